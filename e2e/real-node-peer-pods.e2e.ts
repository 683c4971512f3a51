import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Node, type V1Pod } from "@kubernetes/client-node";
import { DEFAULT_DEVICE_PLUGIN_DIR, SLOT_ENV } from "../src/advertiser/device-plugin.js";
import { VM_READY_CONDITION } from "../src/kube/annotations.js";
import { TAG } from "../src/providers/types.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../src/kube/peerpod.js";
import { startRealNode, type RealNode } from "./cluster/node/node.js";
import { atExit } from "./cluster/process.js";
import { cluster } from "./setup.js";
import { execInPod } from "./support/exec.js";
import { applyObjects, removeWebhookConfigs, withWebhookUrl } from "./support/manifests.js";
import { localAgentCa } from "./support/certs.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { createNamespace, installLocalOverlay } from "./support/suite.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const NAMESPACE = "real-node-peer-pods";
const CLUSTER_ID = "real-node-e2e";
const POOL = "real-node-e2e.peerpods.io/pool";
const VM = "kata.peerpods.io/vm";
const VMS_PER_NODE = 2;
const REGISTERED = "registered with the kubelet";

const condition = (pod: V1Pod, type: string): string | undefined => pod.status?.conditions?.find((c) => c.type === type)?.status;
const slots = (node: V1Node): { capacity?: string; allocatable?: string } => ({ capacity: node.status?.capacity?.[VM], allocatable: node.status?.allocatable?.[VM] });

/**
 * peerpods with a real kubelet: the advertiser is the kubelet's device plugin, the kubelet admits peer
 * pods by the slots it allocates and evaluates their readiness gate. Until peerpods has its own shim,
 * the node's containerd runs the peer-pod RuntimeClass's handler (`kata-remote`) with runc on the
 * node: the containers here run beside the VM the worker made, not in it.
 */
describe("peer pods on the real node (kubelet device manager, readiness gate, restarts)", function () {
  this.timeout(90_000);
  let admin: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let webhookConfig: KubernetesObject[];
  let node: RealNode;
  let peerpods: Peerpods;
  let dir: string;
  let unhealthyFile: string;
  let inventoryFile: string;

  const peerPod = (name: string): V1Pod => ({
    metadata: { name, namespace: NAMESPACE },
    spec: {
      runtimeClassName: "kata-remote",
      nodeSelector: { [POOL]: "peer" },
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", "echo peer pod; sleep 3600"] }],
    },
  });
  const readPod = (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: NAMESPACE });
  /** Waits for the pod to be Ready; a timeout names its phase, the kubelet's reason and the tail of the kubelet's log. */
  const readyPod = (name: string): Promise<V1Pod> => {
    let last: V1Pod | undefined;
    return waitFor(async () => {
      last = await readPod(name);
      return condition(last, "Ready") === "True" ? last : undefined;
    }, { timeoutMs: 30_000, message: `pod ${name} to be Ready` }).catch((error: unknown) => {
      const seen = last && { phase: last.status?.phase, reason: last.status?.reason, message: last.status?.message, conditions: last.status?.conditions?.map((c) => `${c.type}=${c.status}`) };
      throw new Error(`${(error as Error).message}\nlast: ${JSON.stringify(seen)}\nkubelet: ${node.logTail("kubelet")}`);
    });
  };
  const unschedulable = (name: string): Promise<string> =>
    waitFor(async () => (await readPod(name)).status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False")?.message, {
      timeoutMs: 30_000,
      message: `pod ${name} to be marked unschedulable`,
    });
  const nodeSlots = (wanted: { capacity: string; allocatable: string }, why: string): Promise<unknown> =>
    waitFor(async () => JSON.stringify(slots(await core.readNode({ name: node.name }))) === JSON.stringify(wanted), { timeoutMs: 30_000, intervalMs: 200, message: why });
  const registrations = (): number => peerpods.logs().filter((line) => line.msg === REGISTERED).length;
  const vmOf = async (pod: V1Pod): Promise<string | undefined> => {
    const record = (await custom.getNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE, name: pod.metadata!.name! })) as PeerPod;
    return record.status?.instanceID ?? undefined;
  };
  const inventory = async (): Promise<Map<string, string>> => {
    const { instances } = JSON.parse(await readFile(inventoryFile, "utf8").catch(() => '{"instances":[]}')) as { instances: { id: string; tags: Record<string, string> }[] };
    return new Map(instances.filter((vm) => vm.tags[TAG.cluster] === CLUSTER_ID).map((vm) => [vm.id, vm.tags[TAG.podUid]!]));
  };

  before(async function () {
    this.timeout(180_000);
    dir = mkdtempSync(join(tmpdir(), "real-node-peer-pods-"));
    atExit(() => rmSync(dir, { recursive: true, force: true }));
    unhealthyFile = join(dir, "cloud-down");
    inventoryFile = join(dir, "sim-inventory.json");
    const policyFile = join(dir, "policy.json");
    // VMs take 3 s to be ready, so a pod's containers run before its readiness gate opens
    const sim = { createMs: 100, readyMs: 3000, unhealthyFile, inventoryFile };
    await writeFile(policyFile, JSON.stringify({ nodes: { selector: { matchLabels: { [POOL]: "peer" } }, vmsPerNode: VMS_PER_NODE }, provider: { name: "sim", sim } }));

    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    webhookConfig = await installLocalOverlay(admin);
    node = await startRealNode(cluster(), { labels: { [POOL]: "peer" } });
    await createNamespace(core, NAMESPACE);
    const kubeconfig = await serviceAccountKubeconfig(admin, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    peerpods = await startPeerpods({
      kubeconfig,
      args: [
        "--parts=webhook,advertiser,worker",
        "--advertise=device-plugin",
        `--node-name=${node.name}`,
        `--device-plugin-dir=${DEFAULT_DEVICE_PLUGIN_DIR}`,
        `--policy-file=${policyFile}`,
        `--cluster-id=${CLUSTER_ID}`,
        `--agent-tls-dir=${await localAgentCa()}`,
      ],
    });
    await applyObjects(admin, withWebhookUrl(webhookConfig, peerpods.webhookUrl, peerpods.caBundle));
    await waitFor(async () => (await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("probe"), dryRun: "All" })).spec?.containers[0]?.resources?.limits?.[VM] === "1", {
      timeoutMs: 20_000,
      message: "the apiserver to call the webhook",
    });
  });

  after(async function () {
    this.timeout(90_000);
    await core.deleteCollectionNamespacedPod({ namespace: NAMESPACE, gracePeriodSeconds: 0 }).catch(() => undefined);
    await waitFor(async () => (await inventory()).size === 0, { timeoutMs: 45_000, intervalMs: 500, message: "the worker to delete the VMs" }).catch((error: unknown) =>
      console.error(`  cleanup: ${(error as Error).message}`),
    );
    await removeWebhookConfigs(admin, webhookConfig);
    await peerpods?.stop();
    await node?.stop();
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("the kubelet's device manager turns the plugin's devices into the node's capacity and allocatable", async () => {
    await nodeSlots({ capacity: String(VMS_PER_NODE), allocatable: String(VMS_PER_NODE) }, "the kubelet to advertise the plugin's slots");
    await waitFor(() => registrations() === 1, { timeoutMs: 5_000, message: `one registration logged (${registrations()} so far)` });
  });

  it("a peer pod gets a slot allocated by the kubelet, its VM from the worker, and is Ready only once the vm-ready gate is", async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("peer-1") });
    // the kubelet runs the containers, and holds the pod not Ready while the VM is not
    const gated = await waitFor(
      async () => {
        const pod = await readPod("peer-1");
        return condition(pod, "ContainersReady") === "True" && pod.status?.conditions?.find((c) => c.type === "Ready")?.reason === "ReadinessGatesNotReady" ? pod : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: "peer-1's containers to run while its readiness gate is closed" },
    );
    assert.equal(gated.spec?.nodeName, node.name);
    assert.deepEqual(gated.spec?.readinessGates?.map((gate) => gate.conditionType), [VM_READY_CONDITION]);
    assert.notEqual(condition(gated, VM_READY_CONDITION), "True");

    const ready = await readyPod("peer-1");
    assert.equal(condition(ready, VM_READY_CONDITION), "True");
    const vm = await vmOf(ready);
    assert.ok(vm, "the PeerPod record names the pod's VM");
    assert.equal((await inventory()).get(vm), ready.metadata?.uid);
    // the kubelet asked the plugin to Allocate a slot for the container
    const env = await execInPod(admin, NAMESPACE, "peer-1", "app", ["sh", "-c", `echo $${SLOT_ENV}`]);
    assert.match(env.stdout, /^vm-[01]\n$/);
    // the peer-pod handler is mapped to runc on this node until peerpods has its own shim
    assert.deepEqual(await node.sandboxRuntime(ready.metadata!.uid!), { handler: "kata-remote", runtime: "io.containerd.runc.v2" });
  });

  it(`a peer pod beyond vmsPerNode (${VMS_PER_NODE}) waits: Insufficient ${VM}`, async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("peer-2") });
    await readyPod("peer-2");
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("peer-3") });
    assert.match(await unschedulable("peer-3"), /Insufficient kata\.peerpods\.io\/vm/);
  });

  it("an unhealthy provider turns the devices Unhealthy: allocatable 0, new peer pods wait; healthy again, they schedule", async () => {
    for (const name of ["peer-2", "peer-3"]) await core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 });
    await writeFile(unhealthyFile, "real-node e2e: the cloud is down\n");
    await nodeSlots({ capacity: String(VMS_PER_NODE), allocatable: "0" }, "allocatable to drop to 0 while capacity stays");
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("peer-4") });
    assert.match(await unschedulable("peer-4"), /Insufficient kata\.peerpods\.io\/vm/);
    assert.equal(condition(await readPod("peer-1"), "Ready"), "True", "a running peer pod keeps its slot and stays Ready");

    await rm(unhealthyFile);
    await nodeSlots({ capacity: String(VMS_PER_NODE), allocatable: String(VMS_PER_NODE) }, "allocatable to come back");
    assert.equal((await readyPod("peer-4")).spec?.nodeName, node.name);
  });

  it("kubelet and containerd killed and restarted: the peer pods, their containers and VMs survive, and the plugin registers again", async () => {
    const before = await Promise.all(["peer-1", "peer-4"].map(readPod));
    const containers = (pods: V1Pod[]): string[] => pods.map((pod) => `${pod.status?.containerStatuses?.[0]?.containerID} restarts ${pod.status?.containerStatuses?.[0]?.restartCount}`);
    const vms = await Promise.all(before.map(vmOf));
    const registered = registrations();

    await node.restartKubelet();
    await waitFor(() => registrations() > registered, { timeoutMs: 30_000, message: "the device plugin to register with the new kubelet" });
    await nodeSlots({ capacity: String(VMS_PER_NODE), allocatable: String(VMS_PER_NODE) }, "the restarted kubelet to advertise the slots again");
    await node.restartContainerd();

    const after = await Promise.all(["peer-1", "peer-4"].map(readyPod));
    assert.deepEqual(containers(after), containers(before), "the same containers, never restarted");
    assert.deepEqual(await Promise.all(after.map(vmOf)), vms, "the same VMs");
    assert.deepEqual([...(await inventory()).values()].sort(), after.map((pod) => pod.metadata!.uid!).sort(), "one VM per pod, none more");
    // the restarted kubelet still admits peer pods by the slots it allocates
    await core.deleteNamespacedPod({ name: "peer-4", namespace: NAMESPACE, gracePeriodSeconds: 0 });
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("peer-5") });
    assert.equal((await readyPod("peer-5")).spec?.nodeName, node.name);
  });
});
