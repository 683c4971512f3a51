import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { parse as parseYaml, stringify } from "yaml";
import { REASON } from "../src/extender/decide.js";
import { cluster } from "./setup.js";
import { applyObjects, loadManifests, MANIFESTS_DIR } from "./support/manifests.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const NAMESPACE = "sched-e2e";
/** Its own RuntimeClass, so peer pods of other suites on the shared cluster are not counted here. */
const RUNTIME_CLASS = "sched-kata";
const POOL = "sched-e2e.peerpods.io/pool";
const PEER_NODES = ["sched-peer-1", "sched-peer-2"];
const PLAIN_NODES = ["sched-plain-1", "sched-plain-2"];
const VM = "kata.peerpods.io/vm";
const VM_PATH = "kata.peerpods.io~1vm";
const SCHEDULER_CONFIG = join(MANIFESTS_DIR, "scheduler", "kube-scheduler-config.yaml");
const RBAC_KINDS = new Set(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]);

type Policy = Record<string, unknown>;

const peerPod = (name: string): V1Pod => ({
  metadata: { name, namespace: NAMESPACE },
  spec: { runtimeClassName: RUNTIME_CLASS, containers: [{ name: "app", image: "busybox", resources: { requests: { cpu: "500m", memory: "256Mi" } } }] },
});
const plainPod = (name: string): V1Pod => ({ metadata: { name, namespace: NAMESPACE }, spec: { containers: [{ name: "app", image: "busybox" }] } });

describe("scheduling: kube-scheduler with the peerpods extender and advertiser (KWOK nodes)", function () {
  this.timeout(120_000);
  let kc: KubeConfig;
  let core: CoreV1Api;
  let dir: string;
  let policyFile: string;
  let unhealthyFile: string;
  let peerpodsKubeconfig: string;
  let peerpods: Peerpods | undefined;

  const basePolicy = (): Policy => ({
    runtimeClassNames: [RUNTIME_CLASS],
    nodes: { selector: { matchLabels: { [POOL]: "peer" } }, vmsPerNode: 2 },
    scheduling: { strategy: "Spread" },
    provider: { name: "sim", sim: { unhealthyFile, inventoryFile: null } },
  });

  /** Writes the policy file and waits until peerpods has reloaded it. */
  async function setPolicy(changes: Policy): Promise<void> {
    const before = await metric("peerpods_policy_generation");
    await writeFile(policyFile, stringify({ ...basePolicy(), ...changes }));
    await waitFor(async () => (await metric("peerpods_policy_generation")) > before, { timeoutMs: 15_000, message: "peerpods to reload the policy file" });
  }

  async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${peerpods!.metricsPort}/metrics`)).text();
    const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const line = text.split("\n").find((l) => l.startsWith(name) && (l[name.length] === " " || l[name.length] === "{") && wanted.every((w) => l.includes(w)));
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
  }

  /** Starts peerpods with its ServiceAccount's rights, points kube-scheduler at its extender and the apiserver at its webhook. */
  async function startScheduling(parts: string): Promise<void> {
    await peerpods?.stop();
    peerpods = await startPeerpods({ kubeconfig: peerpodsKubeconfig, args: [`--parts=${parts}`, `--policy-file=${policyFile}`] });
    const config = parseYaml(await readFile(SCHEDULER_CONFIG, "utf8")) as { extenders: { urlPrefix: string; tlsConfig: { caData: string } }[] };
    config.extenders[0]!.urlPrefix = `https://127.0.0.1:${peerpods.extenderPort}`;
    config.extenders[0]!.tlsConfig.caData = peerpods.caBundle;
    const configFile = join(dir, "kube-scheduler.yaml");
    await writeFile(configFile, stringify(config));
    await cluster().restartScheduler(configFile);
    await applyObjects(kc, [webhookConfiguration(peerpods)]);
    await waitFor(async () => Boolean((await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("probe"), dryRun: "All" })).spec?.containers[0]?.resources?.requests?.[VM]), {
      timeoutMs: 20_000,
      message: "the apiserver to call the webhook",
    });
  }

  async function createPod(pod: V1Pod): Promise<void> {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: pod });
  }

  async function nodeOf(name: string): Promise<string> {
    return waitFor(async () => (await core.readNamespacedPod({ name, namespace: NAMESPACE })).spec?.nodeName, { timeoutMs: 30_000, message: `pod ${name} to be scheduled` });
  }

  /** Creates peer pods one after the other, each once the previous one is bound (the scoring sees every binding). */
  async function schedulePeerPods(names: string[]): Promise<Record<string, string>> {
    const placed: Record<string, string> = {};
    for (const name of names) {
      await createPod(peerPod(name));
      placed[name] = await nodeOf(name);
    }
    return placed;
  }

  async function failedScheduling(pod: string, pattern: RegExp): Promise<string> {
    return waitFor(
      async () => {
        const { items } = await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: `involvedObject.name=${pod},reason=FailedScheduling` });
        return items.map((event) => event.message ?? "").find((message) => pattern.test(message));
      },
      { timeoutMs: 30_000, message: `a FailedScheduling event for ${pod} matching ${pattern}` },
    );
  }

  async function stillPending(pod: string): Promise<void> {
    const current = await core.readNamespacedPod({ name: pod, namespace: NAMESPACE });
    assert.equal(current.spec?.nodeName, undefined, `${pod} was scheduled to ${current.spec?.nodeName}`);
  }

  async function deleteAllPods(): Promise<void> {
    await core.deleteCollectionNamespacedPod({ namespace: NAMESPACE, gracePeriodSeconds: 0 });
    await waitFor(async () => (await core.listNamespacedPod({ namespace: NAMESPACE })).items.length === 0, { timeoutMs: 30_000, message: "the pods to go" });
  }

  async function setVmStatus(node: string, value: string): Promise<void> {
    const ops = ["capacity", "allocatable"].map((field) => ({ op: "add", path: `/status/${field}/${VM_PATH}`, value }));
    await core.patchNodeStatus({ name: node, body: ops }, setHeaderOptions("Content-Type", PatchStrategy.JsonPatch));
  }

  const vmStatus = async (node: string): Promise<[string | undefined, string | undefined]> => {
    const { status } = await core.readNode({ name: node });
    return [status?.capacity?.[VM], status?.allocatable?.[VM]];
  };

  async function waitVmStatus(node: string, capacity: string | undefined, allocatable: string | undefined): Promise<void> {
    await waitFor(
      async () => {
        const [c, a] = await vmStatus(node);
        return c === capacity && a === allocatable;
      },
      { timeoutMs: 30_000, message: `${node} to advertise ${VM} capacity ${capacity} / allocatable ${allocatable}` },
    );
  }

  before(async () => {
    kc = cluster().kc;
    core = kc.makeApiClient(CoreV1Api);
    dir = await mkdtemp(join(tmpdir(), "peerpods-sched-e2e-"));
    policyFile = join(dir, "policy.yaml");
    unhealthyFile = join(dir, "cloud-unhealthy");
    await writeFile(policyFile, stringify(basePolicy()));
    await applyObjects(kc, (await loadManifests(MANIFESTS_DIR)).filter((o) => RBAC_KINDS.has(o.kind ?? "")));
    peerpodsKubeconfig = await serviceAccountKubeconfig(kc, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await applyObjects(kc, [{ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: RUNTIME_CLASS }, handler: "kata-remote" } as KubernetesObject]);
    await cluster().addNodes([
      ...PEER_NODES.map((name) => ({ name, labels: { [POOL]: "peer" } })),
      ...PLAIN_NODES.map((name) => ({ name, labels: { [POOL]: "plain" } })),
    ]);
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });
  });

  after(async () => {
    await peerpods?.stop();
    await cluster().restartScheduler();
    const quietly = (call: Promise<unknown>): Promise<unknown> => call.catch(() => undefined);
    await quietly(core.deleteCollectionNamespacedPod({ namespace: NAMESPACE, gracePeriodSeconds: 0 }));
    await quietly(core.deleteNamespace({ name: NAMESPACE }));
    await Promise.all([...PEER_NODES, ...PLAIN_NODES].map((name) => quietly(core.deleteNode({ name }))));
    const objects = KubernetesObjectApi.makeApiClient(kc);
    await quietly(objects.delete({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: RUNTIME_CLASS } }));
    await quietly(objects.delete({ apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration", metadata: { name: "sched-e2e" } }));
    await rm(dir, { recursive: true, force: true });
  });

  describe("the extender alone (every node advertises 10 slots, so only the extender keeps peer pods apart)", () => {
    before(async () => {
      await Promise.all([...PEER_NODES, ...PLAIN_NODES].map((node) => setVmStatus(node, "10")));
      await startScheduling("webhook,extender");
    });
    afterEach(deleteAllPods);

    it("places peer pods only on matching nodes, keeps the fifth Pending with the extender's reasons, and frees a slot on delete", async () => {
      const placed = await schedulePeerPods(["peer-1", "peer-2", "peer-3", "peer-4"]);
      assert.ok(Object.values(placed).every((node) => PEER_NODES.includes(node)), `peer pods placed on ${JSON.stringify(placed)}`);

      const plainBefore = await metric("peerpods_extender_requests_total", { verb: "filter", result: "skipped" });
      await Promise.all(["plain-1", "plain-2", "plain-3"].map((name) => createPod(plainPod(name))));
      for (const name of ["plain-1", "plain-2", "plain-3"]) await nodeOf(name);
      assert.equal(await metric("peerpods_extender_requests_total", { verb: "filter", result: "skipped" }), plainBefore, "plain pods must not reach the extender");

      await createPod(peerPod("peer-5"));
      const message = await failedScheduling("peer-5", /peer-pod VM slots/);
      assert.match(message, new RegExp(`2 ${REASON.slotsFull}`));
      // other suites' nodes on the shared cluster may add to this count
      assert.match(message, new RegExp(`\\d+ ${REASON.notSelected.replace(/[()]/g, "\\$&")}`));
      await stillPending("peer-5");

      await core.deleteNamespacedPod({ name: "peer-2", namespace: NAMESPACE, gracePeriodSeconds: 0 });
      assert.equal(await nodeOf("peer-5"), placed["peer-2"]);
    });

    it("Spread puts 4 pods 2+2; BinPack fills one node first", async () => {
      await setPolicy({ nodes: { selector: { matchLabels: { [POOL]: "peer" } }, vmsPerNode: 10 }, scheduling: { strategy: "Spread" } });
      const spread = Object.values(await schedulePeerPods(["spread-1", "spread-2", "spread-3", "spread-4"]));
      assert.deepEqual(PEER_NODES.map((node) => spread.filter((n) => n === node).length), [2, 2]);
      await deleteAllPods();

      await setPolicy({ nodes: { selector: { matchLabels: { [POOL]: "peer" } }, vmsPerNode: 10 }, scheduling: { strategy: "BinPack" } });
      const packed = Object.values(await schedulePeerPods(["pack-1", "pack-2", "pack-3", "pack-4"]));
      assert.equal(new Set(packed).size, 1, `BinPack spread pods over ${packed.join(", ")}`);
    });
  });

  describe("with the advertiser (slots follow the policy, node annotations and the provider's health)", () => {
    before(async () => {
      await writeFile(policyFile, stringify(basePolicy()));
      await startScheduling("webhook,extender,advertiser");
    });
    afterEach(async () => {
      await rm(unhealthyFile, { force: true });
      await deleteAllPods();
    });

    it("advertises vmsPerNode on matching nodes, honours the node annotation, and removes the resource elsewhere", async () => {
      for (const node of PEER_NODES) await waitVmStatus(node, "2", "2");
      for (const node of PLAIN_NODES) await waitVmStatus(node, undefined, undefined);
      const annotate = (value: string | null) =>
        core.patchNode({ name: PEER_NODES[1]!, body: { metadata: { annotations: { "peerpods.io/vms-per-node": value } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
      await annotate("3");
      await waitVmStatus(PEER_NODES[1]!, "3", "3");
      await annotate(null);
      await waitVmStatus(PEER_NODES[1]!, "2", "2");
      assert.ok((await metric("peerpods_advertiser_patches_total", { result: "ok" })) >= 4);
      assert.equal(await metric("peerpods_node_vm_slots", { node: PEER_NODES[0]!, state: "allocatable" }), 2);
    });

    it("maxVMs: 3 keeps the fourth peer pod Pending with the quota message; raising the limit schedules it", async () => {
      await setPolicy({ limits: { maxVMs: 3 } });
      const names = ["quota-1", "quota-2", "quota-3", "quota-4"];
      await Promise.all(names.map((name) => createPod(peerPod(name))));
      const pending = await waitFor(
        async () => {
          const pods = await Promise.all(names.map((name) => core.readNamespacedPod({ name, namespace: NAMESPACE })));
          const bound = pods.filter((p) => p.spec?.nodeName);
          return bound.length === 3 ? pods.find((p) => !p.spec?.nodeName)!.metadata!.name! : undefined;
        },
        { timeoutMs: 30_000, message: "three of the four pods to be scheduled" },
      );
      await failedScheduling(pending, /peer-pod limit maxVMs=3 reached: 3 VMs in use/);
      await stillPending(pending);
      assert.equal(await metric("peerpods_quota_used", { resource: "vms" }), 3);

      await setPolicy({ limits: { maxVMs: 4 } });
      assert.ok(PEER_NODES.includes(await nodeOf(pending)));
    });

    it("an unhealthy provider drops allocatable to 0 and new peer pods wait; healthy again, they schedule", async () => {
      await writeFile(unhealthyFile, "sim: the e2e marked the cloud down");
      for (const node of PEER_NODES) await waitVmStatus(node, "2", "0");
      await createPod(peerPod("while-down"));
      await failedScheduling("while-down", new RegExp(`Insufficient ${VM.replace(".", "\\.")}`));
      await stillPending("while-down");

      await rm(unhealthyFile);
      for (const node of PEER_NODES) await waitVmStatus(node, "2", "2");
      assert.ok(PEER_NODES.includes(await nodeOf("while-down")));
    });

    it("keeps advertising and filtering after an apiserver restart (the informers relist)", async () => {
      await cluster().restartApiserver();
      await core.patchNode({ name: PEER_NODES[0]!, body: { metadata: { annotations: { "peerpods.io/vms-per-node": "1" } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
      await waitVmStatus(PEER_NODES[0]!, "1", "1");
      const placed = await schedulePeerPods(["after-restart-1", "after-restart-2"]);
      assert.ok(Object.values(placed).every((node) => PEER_NODES.includes(node)), `placed on ${JSON.stringify(placed)}`);
      await core.patchNode({ name: PEER_NODES[0]!, body: { metadata: { annotations: { "peerpods.io/vms-per-node": null } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
      await waitVmStatus(PEER_NODES[0]!, "2", "2");
    });
  });
});

function webhookConfiguration(peerpods: Peerpods): KubernetesObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: "sched-e2e" },
    webhooks: [
      {
        name: "mutate.sched-e2e.peerpods.io",
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
        failurePolicy: "Fail",
        timeoutSeconds: 5,
        clientConfig: { url: `${peerpods.webhookUrl}/mutate`, caBundle: peerpods.caBundle },
        rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "Namespaced" }],
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NAMESPACE } },
        matchConditions: [{ name: "sched-e2e-peer-pods", expression: `has(object.spec.runtimeClassName) && object.spec.runtimeClassName == '${RUNTIME_CLASS}'` }],
      },
    ],
  } as KubernetesObject;
}
