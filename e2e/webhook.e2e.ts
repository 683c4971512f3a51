import assert from "node:assert/strict";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { ANNOTATION, VM_READY_CONDITION } from "../src/kube/annotations.js";
import { POLICY_GROUP, POLICY_KIND, POLICY_NAME, POLICY_PLURAL, POLICY_VERSION } from "../src/policy/schema.js";
import { cluster } from "./setup.js";
import { expectApiFailure } from "./support/api-errors.js";
import { applyObjects, FIELD_MANAGER, loadManifests, LOCAL_OVERLAY_DIR, withWebhookUrl, removeWebhookConfigs } from "./support/manifests.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const NAMESPACE = "e2e-webhook";
const EXCLUDED = "e2e-excluded";
const VM = "kata.peerpods.io/vm";
const PEERPODS_SA = { namespace: "peerpods-system", name: "peerpods" };

type PolicySpec = Record<string, unknown>;

const pod = (name: string, spec: Partial<V1Pod["spec"]> = {}, annotations: Record<string, string> = {}): V1Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, annotations },
  spec: {
    containers: [
      { name: "app", image: "busybox", resources: { requests: { cpu: "1500m", memory: "700Mi" } } },
      { name: "sidecar", image: "busybox", resources: { requests: { cpu: "100m" }, limits: { memory: "64Mi" } } },
    ],
    ...spec,
  },
});

/** The sidecar's resources once the apiserver has defaulted them (a request from the limit where none is set). */
const SIDECAR_DEFAULTED = { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "64Mi" } };
/** What `pod()`'s containers ask for, as stored when no webhook touches the pod. */
const UNTOUCHED_RESOURCES = [{ requests: { cpu: "1500m", memory: "700Mi" } }, SIDECAR_DEFAULTED];

const peerPod = (name: string, annotations: Record<string, string> = {}): V1Pod => pod(name, { runtimeClassName: "kata-remote" }, annotations);

describe("webhook against the real kube-apiserver", function () {
  let admin: KubeConfig;
  let core: CoreV1Api;
  let manifests: KubernetesObject[];
  let peerpods: Peerpods;
  let peerpodsKubeconfig: string;
  let basePolicy: PolicySpec;

  /** Starts peerpods with the ServiceAccount's token and points the cluster's webhook at it. */
  async function startWebhook(): Promise<void> {
    peerpods = await startPeerpods({ kubeconfig: peerpodsKubeconfig, args: ["--parts=webhook"] });
    const webhookConfig = manifests.filter((o) => o.kind === "MutatingWebhookConfiguration");
    await applyObjects(admin, withWebhookUrl(webhookConfig, peerpods.webhookUrl, peerpods.caBundle));
    // the apiserver picks the configuration up asynchronously: wait until a dry run is mutated
    await waitFor(async () => hasVm(await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("probe"), dryRun: "All" })), {
      timeoutMs: 20_000,
      message: "the apiserver to call the webhook",
    });
  }

  /** Applies the policy's spec and waits until peerpods has it in force. */
  async function setPolicy(spec: PolicySpec): Promise<void> {
    const [applied] = await applyObjects(admin, [{ apiVersion: `${POLICY_GROUP}/${POLICY_VERSION}`, kind: POLICY_KIND, metadata: { name: POLICY_NAME }, spec } as KubernetesObject]);
    const generation = applied!.metadata!.generation;
    await waitFor(() => peerpods.logs().some((line) => line.msg === "policy updated from the cluster" && line.generation === generation), {
      timeoutMs: 15_000,
      message: `peerpods to apply policy generation ${generation}`,
    });
  }

  before(async function () {
    this.timeout(120_000);
    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    manifests = await loadManifests(LOCAL_OVERLAY_DIR);
    basePolicy = (manifests.find((o) => o.kind === POLICY_KIND) as KubernetesObject & { spec: PolicySpec }).spec;
    await applyObjects(
      admin,
      manifests.filter((o) => o.kind !== "MutatingWebhookConfiguration"),
    );
    for (const name of [NAMESPACE, EXCLUDED]) await core.createNamespace({ body: { metadata: { name } } });
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });
    peerpodsKubeconfig = await serviceAccountKubeconfig(admin, PEERPODS_SA, join(cluster().dataDir, "peerpods.kubeconfig"), cluster().caFile);
    await startWebhook();
  });

  after(async () => {
    // the cluster is shared with the other suites: leave no webhook pointing at a stopped peerpods
    await removeWebhookConfigs(admin, manifests);
    await peerpods?.stop();
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    await core.deleteNamespace({ name: EXCLUDED }).catch(() => undefined);
  });

  it("the local overlay applies cleanly with server-side apply, and applying again changes nothing", async () => {
    const local = withWebhookUrl(manifests, peerpods.webhookUrl, peerpods.caBundle);
    const api = KubernetesObjectApi.makeApiClient(admin);
    const before = await Promise.all(local.map((o) => api.read(o as never)));
    // controllers keep writing status (so resourceVersions move); our own apply record only moves when
    // our apply changes something, and then its time (1 s resolution) moves too
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const again = await applyObjects(admin, local);
    assert.equal(again.length, manifests.length);
    assert.deepEqual(again.map(ourApply).sort(), before.map(ourApply).sort());
  });

  const invalidPolicies: [string, PolicySpec, string][] = [
    ["a VM without vCPUs", { instanceTypes: [{ name: "tiny", vcpus: 0, memoryMiB: 512 }] }, "spec.instanceTypes[0].vcpus: Invalid value: 0"],
    ["too little memory", { instanceTypes: [{ name: "tiny", vcpus: 1, memoryMiB: 32 }] }, "spec.instanceTypes[0].memoryMiB: Invalid value: 32"],
    ["a type without vcpus", { instanceTypes: [{ name: "tiny", memoryMiB: 512 }] }, "spec.instanceTypes[0].vcpus: Required value"],
    ["two types of one name", { instanceTypes: [{ name: "a", vcpus: 1, memoryMiB: 512 }, { name: "a", vcpus: 2, memoryMiB: 512 }] }, "spec.instanceTypes[1]: Duplicate value"],
    ["an unknown strategy", { scheduling: { strategy: "Random" } }, 'spec.scheduling.strategy: Unsupported value: "Random"'],
    ["an unknown provider", { provider: { name: "gcp" } }, 'spec.provider.name: Unsupported value: "gcp"'],
    ["a qemu accelerator that does not exist", { provider: { name: "qemu", qemu: { accelerator: "hvf" } } }, 'spec.provider.qemu.accelerator: Unsupported value: "hvf"'],
    ["a negative qemu VM limit", { provider: { qemu: { maxVMs: -1 } } }, "spec.provider.qemu.maxVMs: Invalid value: -1"],
    ["an aws block without its image", { provider: { name: "aws", aws: { region: "eu-west-1" } } }, "spec.provider.aws.imageId: Required value"],
    ["an aws region that is not one", { provider: { name: "aws", aws: { region: "Europe", imageId: "ami-0123" } } }, 'spec.provider.aws.region: Invalid value: "Europe"'],
    ["no runtime class", { runtimeClassNames: [] }, "spec.runtimeClassNames: Invalid value"],
    ["a namespace name that cannot be", { excludedNamespaces: ["Not_A_Namespace"] }, "spec.excludedNamespaces[0]: Invalid value"],
  ];
  for (const [what, spec, error] of invalidPolicies) {
    it(`the CRD schema rejects a PeerPodPolicy with ${what}`, async () => {
      const custom = admin.makeApiClient(CustomObjectsApi);
      const body = { apiVersion: `${POLICY_GROUP}/${POLICY_VERSION}`, kind: POLICY_KIND, metadata: { generateName: "invalid-" }, spec };
      const failure = await expectApiFailure(custom.createClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL, body }));
      assert.equal(failure.code, 422);
      assert.ok(failure.message.includes(error), failure.message);
    });
  }

  it("the CRD stores valid provider settings as given, and the sim block it leaves to peerpods", async () => {
    const custom = admin.makeApiClient(CustomObjectsApi);
    const spec = { provider: { name: "aws", aws: { region: "eu-west-1", imageId: "ami-0123", subnetIds: ["subnet-1"] }, sim: { createMs: { median: 10, p99: 50 } } } };
    const body = { apiVersion: `${POLICY_GROUP}/${POLICY_VERSION}`, kind: POLICY_KIND, metadata: { name: "provider-settings" }, spec };
    await custom.createClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL, body });
    const stored = (await custom.getClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL, name: "provider-settings" })) as { spec: unknown };
    assert.deepEqual(stored.spec, spec);
    await custom.deleteClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL, name: "provider-settings" });
  });

  it("stores a kata-remote pod mutated: one VM unit instead of CPU and memory, annotations, readiness gate, overhead kept", async () => {
    const created = await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("peer") });
    const stored = await core.readNamespacedPod({ name: "peer", namespace: NAMESPACE });
    assert.equal(stored.metadata?.uid, created.metadata?.uid);
    const [app, sidecar] = stored.spec!.containers;
    assert.deepEqual(plain(app!.resources), { requests: { [VM]: "1" }, limits: { [VM]: "1" } });
    assert.deepEqual(plain(sidecar!.resources), {});
    const annotations = stored.metadata!.annotations!;
    assert.equal(annotations[ANNOTATION.instanceType], "medium");
    assert.equal(annotations[ANNOTATION.kataMachineType], "medium");
    assert.equal(annotations[ANNOTATION.kataVcpus], "2");
    assert.equal(annotations[ANNOTATION.kataMemory], "1024");
    assert.deepEqual(JSON.parse(annotations[ANNOTATION.originalResources]!), {
      containers: { app: { requests: { cpu: "1500m", memory: "700Mi" } }, sidecar: { requests: SIDECAR_DEFAULTED.requests, limits: SIDECAR_DEFAULTED.limits } },
    });
    assert.deepEqual(plain(stored.spec!.readinessGates), [{ conditionType: VM_READY_CONDITION }]);
    // added by the RuntimeClass admission plugin before the webhook ran, and left alone by it
    assert.deepEqual(plain(stored.spec!.overhead), { cpu: "250m", memory: "120Mi" });
    await waitFor(() => peerpods.logs().some((line) => line.msg === "peer pod mutated" && line.pod === `${NAMESPACE}/peer` && line.instanceType === "medium"), { timeoutMs: 5_000, message: "the mutation logged" });
  });

  it("stores a plain pod untouched", async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: pod("plain") });
    const stored = await core.readNamespacedPod({ name: "plain", namespace: NAMESPACE });
    assert.deepEqual(plain(stored.spec!.containers.map((c) => c.resources)), UNTOUCHED_RESOURCES);
    assert.equal(stored.metadata?.annotations, undefined);
    assert.equal(stored.spec!.readinessGates, undefined);
  });

  it("leaves peer pods in excluded namespaces untouched (the policy's and the webhook's own)", async () => {
    await setPolicy({ ...basePolicy, excludedNamespaces: ["kube-system", EXCLUDED] });
    try {
      for (const namespace of [EXCLUDED, "kube-system"]) {
        await core.createNamespacedPod({ namespace, body: peerPod("excluded") });
        const stored = await core.readNamespacedPod({ name: "excluded", namespace });
        assert.deepEqual(plain(stored.spec!.containers.map((c) => c.resources)), UNTOUCHED_RESOURCES, namespace);
        assert.equal(stored.metadata?.annotations?.[ANNOTATION.instanceType], undefined, namespace);
        await core.deleteNamespacedPod({ name: "excluded", namespace, gracePeriodSeconds: 0 });
      }
    } finally {
      await setPolicy(basePolicy);
    }
  });

  it("denies a pod asking for an instance type its namespace may not use, and the client sees why", async () => {
    await setPolicy({ ...basePolicy, allowedInstanceTypes: { [NAMESPACE]: ["small", "medium"] } });
    try {
      const failure = await expectApiFailure(core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("forbidden", { [ANNOTATION.kataMachineType]: "large" }) }));
      assert.equal(failure.code, 403);
      assert.match(failure.message, /admission webhook "mutate\.peerpods\.io" denied the request: peerpods: instance type "large" is not allowed in namespace "e2e-webhook"; allowed types: medium, small/);
      await expectApiFailure(core.readNamespacedPod({ name: "forbidden", namespace: NAMESPACE }));
    } finally {
      await setPolicy(basePolicy);
    }
  });

  it("mutates a dry-run create and stores nothing", async () => {
    const answer = await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("dry"), dryRun: "All" });
    assert.ok(hasVm(answer));
    assert.equal(answer.metadata?.annotations?.[ANNOTATION.instanceType], "medium");
    const missing = await expectApiFailure(core.readNamespacedPod({ name: "dry", namespace: NAMESPACE }));
    assert.equal(missing.code, 404);
    await waitFor(() => peerpods.logs().some((line) => line.msg === "peer pod mutated" && line.pod === `${NAMESPACE}/dry` && line.dryRun === true), { timeoutMs: 5_000, message: "the dry run logged" });
  });

  it("applies a policy change in the cluster without a restart", async () => {
    const big = (name: string): V1Pod => ({ ...peerPod(name), spec: { ...peerPod(name).spec!, containers: [{ name: "app", image: "busybox", resources: { requests: { cpu: "3" } } }] } });
    const dry = async (name: string): Promise<string | undefined> =>
      (await core.createNamespacedPod({ namespace: NAMESPACE, body: big(name), dryRun: "All" })).metadata?.annotations?.[ANNOTATION.instanceType];
    assert.equal(await dry("before"), "large");
    const instanceTypes = [...(basePolicy.instanceTypes as object[]), { name: "c3", vcpus: 3, memoryMiB: 1536, hourlyCost: 0.03 }];
    await setPolicy({ ...basePolicy, instanceTypes });
    try {
      assert.equal(await dry("after"), "c3");
      assert.equal(peerpods.logs().filter((line) => line.msg === "peerpods serving").length, 1, "peerpods restarted");
    } finally {
      await setPolicy(basePolicy);
    }
  });

  it("runs with only the manifests' RBAC: its ServiceAccount is refused what the ClusterRole does not grant", async () => {
    const asPeerpods = new KubeConfig();
    asPeerpods.loadFromFile(peerpodsKubeconfig);
    const podsAsPeerpods = asPeerpods.makeApiClient(CoreV1Api);
    const customAsPeerpods = asPeerpods.makeApiClient(CustomObjectsApi);
    // granted: what the webhook needs (it has been serving from this token all along)
    await customAsPeerpods.listClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL });
    // refused: secrets, deleting pods, and writing the policy it only reads
    const refused = [
      await expectApiFailure(podsAsPeerpods.listSecretForAllNamespaces()),
      await expectApiFailure(podsAsPeerpods.deleteNamespacedPod({ name: "plain", namespace: NAMESPACE })),
      await expectApiFailure(customAsPeerpods.patchClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL, name: POLICY_NAME, body: [{ op: "replace", path: "/spec/readinessGate", value: false }] })),
    ];
    for (const failure of refused) {
      assert.equal(failure.code, 403);
      assert.match(failure.message, /system:serviceaccount:peerpods-system:peerpods/);
    }
    const forbiddenInLogs = peerpods.logs().filter((line) => JSON.stringify(line).toLowerCase().includes("forbidden") && line.msg !== "peer pod denied");
    assert.deepEqual(forbiddenInLogs, []);
  });

  it("with the webhook down, refuses peer pods with a clear error and still admits plain pods", async () => {
    await peerpods.stop();
    try {
      const failure = await expectApiFailure(core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("while-down") }));
      assert.equal(failure.code, 500);
      assert.match(failure.message, /failed calling webhook "mutate\.peerpods\.io"/);
      assert.match(failure.message, /connection refused/);
      await core.createNamespacedPod({ namespace: NAMESPACE, body: pod("plain-while-down") });
      await core.readNamespacedPod({ name: "plain-while-down", namespace: NAMESPACE });
    } finally {
      await startWebhook();
    }
    const back = await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("after-outage") });
    assert.ok(hasVm(back), "a peer pod is admitted and mutated again once the webhook is back");
  });
});

function hasVm(pod: V1Pod): boolean {
  return pod.spec?.containers[0]?.resources?.limits?.[VM] === "1";
}

/** An object's identity and the record of the e2e's own server-side apply of it (when and which fields). */
function ourApply(object: KubernetesObject): string {
  const entry = object.metadata?.managedFields?.find((m) => m.manager === FIELD_MANAGER && m.operation === "Apply");
  assert.ok(entry, `${object.kind}/${object.metadata?.name} has no server-side apply record of ${FIELD_MANAGER}`);
  return `${object.kind}/${object.metadata?.name} ${new Date(entry.time!).toISOString()} ${JSON.stringify(entry.fieldsV1)}`;
}

/** The wire form of a client-node model (plain objects, comparable with deepEqual). */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null));
}
