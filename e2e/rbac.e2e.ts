/**
 * RBAC is the minimum: every verb on every resource that manifests/rbac grants peerpods' ServiceAccount
 * shows up in the apiserver's audit log as a request peerpods made. The log holds what the suites run
 * before this one did as that ServiceAccount, plus one full peer-pod lifecycle run here with every
 * part and the cluster's PeerPodPolicy, so the check does not depend on which suites ran.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../src/kube/annotations.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION } from "../src/kube/peerpod.js";
import { cluster } from "./setup.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR, MANIFESTS_DIR, withWebhookUrl, removeWebhookConfigs } from "./support/manifests.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const NAMESPACE = "rbac-e2e";
const NODE = "rbac-node-1";
const SERVICE_ACCOUNT = { namespace: "peerpods-system", name: "peerpods" };
const REPO = fileURLToPath(new URL("..", import.meta.url));
const USER = `system:serviceaccount:${SERVICE_ACCOUNT.namespace}:${SERVICE_ACCOUNT.name}`;

/**
 * Grants whose calls exist in the code but only on paths one clean run does not take; each names the
 * call that needs it, and the test checks the call is still there.
 */
const RARE_PATHS = [
  { grant: "peerpods.io/peerpods get", file: "src/kube/peerpod-records.ts", call: "custom.getNamespacedCustomObject(" },
  { grant: "peerpods.io/peerpods delete", file: "src/kube/peerpod-records.ts", call: "custom.deleteNamespacedCustomObject(" },
];

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}
interface AuditEvent {
  verb: string;
  user: { username: string };
  objectRef?: { apiGroup?: string; resource?: string; subresource?: string };
  requestReceivedTimestamp: string;
}

/** "group/resource[/subresource] verb" for every grant of the ServiceAccount's roles. */
export function grants(roles: { rules?: Rule[] }[]): Set<string> {
  const keys = new Set<string>();
  for (const rule of roles.flatMap((role) => role.rules ?? []))
    for (const group of rule.apiGroups ?? [""]) for (const resource of rule.resources ?? []) for (const verb of rule.verbs) keys.add(`${group}/${resource} ${verb}`);
  return keys;
}

/** The same keys for the requests a user made (since `since`, ms), from audit log lines. */
export function uses(auditLog: string, username: string, since = 0): Set<string> {
  const keys = new Set<string>();
  for (const line of auditLog.split("\n")) {
    if (!line.startsWith("{")) continue;
    const event = JSON.parse(line) as AuditEvent;
    if (event.user.username !== username || !event.objectRef?.resource || Date.parse(event.requestReceivedTimestamp) < since) continue;
    const { apiGroup = "", resource, subresource } = event.objectRef;
    keys.add(`${apiGroup}/${resource}${subresource ? `/${subresource}` : ""} ${event.verb}`);
  }
  return keys;
}

describe("RBAC: peerpods' roles grant nothing it does not use (audit log of the real apiserver)", function () {
  this.timeout(180_000);
  let admin: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let dir: string;
  let peerpods: Peerpods | undefined;
  let webhookConfig: KubernetesObject[];
  let clusterPolicy: KubernetesObject;

  before(async function () {
    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    const manifests = await loadManifests(LOCAL_OVERLAY_DIR);
    webhookConfig = manifests.filter((o) => o.kind === "MutatingWebhookConfiguration");
    clusterPolicy = manifests.find((o) => o.kind === "PeerPodPolicy")!;
    await applyObjects(
      admin,
      manifests.filter((o) => o.kind !== "MutatingWebhookConfiguration"),
    );
    // the cluster policy, with the simulated cloud: the policy watch is part of what is checked
    const spec = (clusterPolicy as KubernetesObject & { spec: Record<string, unknown> }).spec;
    await applyObjects(admin, [{ ...clusterPolicy, spec: { ...spec, provider: { name: "sim", sim: { inventoryFile: null, readyMs: 200 } } } } as KubernetesObject]);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });
    await cluster().addNodes([{ name: NODE, labels: { "katacontainers.io/kata-runtime": "true" } }]);
    dir = await mkdtemp(join(tmpdir(), "rbac-e2e-"));
  });

  after(async function () {
    this.timeout(60_000);
    await peerpods?.kill();
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    await core.deleteNode({ name: NODE }).catch(() => undefined);
    await removeWebhookConfigs(admin, webhookConfig);
    await applyObjects(admin, [clusterPolicy]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("after a peer pod's whole life under all four parts, every granted verb was used", async () => {
    const started = Date.now() - 1000;
    const kubeconfig = await serviceAccountKubeconfig(admin, SERVICE_ACCOUNT, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    peerpods = await startPeerpods({ kubeconfig, args: ["--parts=webhook,extender,advertiser,worker", "--cluster-id=rbac-e2e", "--gc-interval=1", "--gc-grace=0"] });
    await applyObjects(admin, withWebhookUrl(webhookConfig, peerpods.webhookUrl, peerpods.caBundle));
    await waitFor(
      async () => (await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod(), dryRun: "All" })).metadata?.annotations?.["peerpods.io/instance-type"],
      { timeoutMs: 20_000, message: "the apiserver to call the webhook" },
    );
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod() });
    await waitFor(
      async () =>
        (await core.readNamespacedPod({ name: "rbac-pod", namespace: NAMESPACE })).status?.conditions?.some(
          (c) => c.type === VM_READY_CONDITION && c.status === "True" && c.reason === "VMReady",
        ),
      { timeoutMs: 60_000, message: "the worker to mark the peer pod's VM ready" },
    );
    await core.deleteNamespacedPod({ name: "rbac-pod", namespace: NAMESPACE, gracePeriodSeconds: 0 });
    await waitFor(async () => (await core.listNamespacedPod({ namespace: NAMESPACE })).items.length === 0, { timeoutMs: 30_000, message: "the pod to go" });
    await waitFor(async () => (await custom.listNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE })).items.length === 0, {
      timeoutMs: 30_000,
      message: "its PeerPod record to go",
    });
    // a graceful stop releases the Lease
    await peerpods.stop();

    const roles = (await loadManifests(join(MANIFESTS_DIR, "rbac"))).filter((o) => o.kind === "ClusterRole" || o.kind === "Role") as { rules?: Rule[] }[];
    const granted = grants(roles);
    const auditLog = await readFile(cluster().auditLogPath, "utf8");
    // what the suites before this one did counts as use; only this run's own requests count as need
    const used = uses(auditLog, USER);
    for (const { grant, file, call } of RARE_PATHS) {
      assert.ok((await readFile(join(REPO, file), "utf8")).includes(call), `${file} no longer calls ${call}: drop "${grant}" from manifests/rbac`);
      used.add(grant);
    }
    const unused = [...granted].filter((key) => !used.has(key)).sort();
    const beyond = [...uses(auditLog, USER, started)].filter((key) => !granted.has(key)).sort();
    console.log(`      RBAC: ${granted.size} grants, ${used.size} distinct requests by ${USER}`);
    assert.deepEqual(unused, [], "granted but never used by peerpods (remove from manifests/rbac)");
    assert.deepEqual(beyond, [], "used beyond the grants (these requests were refused)");
  });
});

function peerPod(): V1Pod {
  return {
    metadata: { name: "rbac-pod" },
    spec: { runtimeClassName: "kata-remote", containers: [{ name: "app", image: "busybox", resources: { requests: { cpu: "250m", memory: "128Mi" } } }] },
  };
}
