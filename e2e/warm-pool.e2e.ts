import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { ANNOTATION, VM_READY_CONDITION } from "../src/kube/annotations.js";
import { createProvider } from "../src/providers/factory.js";
import { TAG, type Instance, type Provider } from "../src/providers/types.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../src/kube/peerpod.js";
import { atExit } from "./cluster/process.js";
import { cluster } from "./setup.js";
import { localAgentCa } from "./support/certs.js";
import { trackedTempDir } from "./support/leftovers.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR } from "./support/manifests.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { processesMentioning } from "./support/processes.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const NAMESPACE = "wp-e2e";
const CLUSTER_ID = "wp-e2e";
const NODE = "wp-node-1";
const QEMU = { maxVMs: 8 };
const BOOT_TIMEOUT_MS = 180_000;

const policy = (min: number): object => ({
  instanceTypes: [{ name: "small", vcpus: 1, memoryMiB: 256, hourlyCost: 0.01 }],
  provider: { name: "qemu", qemu: QEMU },
  warmPool: { pools: [{ instanceType: "small", min }] },
});

/** A peer pod already bound to the node (as the scheduler would leave it), of the pooled type. */
function peerPod(name: string): V1Pod {
  return {
    metadata: { name, namespace: NAMESPACE, annotations: { [ANNOTATION.instanceType]: "small" } },
    spec: { runtimeClassName: "kata-remote", nodeName: NODE, containers: [{ name: "main", image: "busybox" }] },
  };
}

describe("warm pool: pre-booted qemu VMs claimed by peer pods (worker on the local control plane)", function () {
  this.timeout(BOOT_TIMEOUT_MS * 2);
  let admin: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let dir: string;
  let stateDir: string;
  let policyFile: string;
  let kubeconfig: string;
  let peerpods: Peerpods | undefined;
  let provider: Provider;

  const start = async (): Promise<void> => {
    peerpods = await startPeerpods({
      kubeconfig,
      // Our own state folder (the last --state-dir wins): the VMs must outlive a killed peerpods.
      args: ["--parts=worker", `--policy-file=${policyFile}`, `--cluster-id=${CLUSTER_ID}`, "--no-leader-elect", "--gc-interval=2", "--gc-grace=20", `--state-dir=${stateDir}`, `--agent-tls-dir=${await localAgentCa()}`],
    });
  };
  const setPoolMin = (min: number): Promise<void> => writeFile(policyFile, JSON.stringify(policy(min)));

  const live = async (): Promise<Instance[]> => (await provider.list({ [TAG.cluster]: CLUSTER_ID })).filter((i) => i.state === "pending" || i.state === "running");
  const pool = async (): Promise<Instance[]> => (await live()).filter((i) => i.tags[TAG.pool] !== undefined);
  const idle = async (): Promise<Instance[]> => (await pool()).filter((i) => i.ready);
  const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${peerpods!.metricsPort}/metrics`)).text();
  /** `count` idle pool VMs, as the cloud lists them and as the pool itself sees them (its gauge). */
  const waitIdle = (count: number, message: string): Promise<Instance[]> =>
    waitFor(
      async () => {
        const all = await pool();
        if (all.length !== count || !all.every((i) => i.ready)) return undefined;
        const gauge = new RegExp(`^peerpods_warm_pool_vms\\{instance_type="small",state="idle"\\} ${count}$`, "m");
        return gauge.test(await metrics()) ? all : undefined;
      },
      { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 250, message },
    );
  const record = async (name: string): Promise<PeerPod | undefined> =>
    (await custom.getNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE, name }).catch(() => undefined)) as
      | PeerPod
      | undefined;
  const vmReady = async (name: string): Promise<boolean> => {
    const pod = await core.readNamespacedPod({ name, namespace: NAMESPACE });
    return pod.status?.conditions?.some((c) => c.type === VM_READY_CONDITION && c.status === "True") ?? false;
  };
  /** Creates the pod and resolves with the milliseconds until the worker marked its VM ready. */
  const createReady = async (name: string): Promise<number> => {
    const started = Date.now();
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod(name) });
    await waitFor(() => vmReady(name), { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 50, message: `pod ${name} VM-ready` });
    return Date.now() - started;
  };
  /** Every live pod of the namespace has exactly one VM, tagged for it and recorded; every other VM is an idle pool VM; `poolSize` of those. */
  const converged = async (poolSize: number): Promise<boolean> => {
    const pods = (await core.listNamespacedPod({ namespace: NAMESPACE })).items.filter((p) => !p.metadata?.deletionTimestamp);
    const vms = await live();
    for (const pod of pods) {
      const owned = vms.filter((vm) => vm.tags[TAG.podUid] === pod.metadata!.uid);
      if (owned.length !== 1 || owned[0]!.tags[TAG.pool] !== undefined || !owned[0]!.ready) return false;
      if ((await record(pod.metadata!.name!))?.status?.instanceID !== owned[0]!.id || !(await vmReady(pod.metadata!.name!))) return false;
    }
    const rest = vms.filter((vm) => vm.tags[TAG.podUid] === undefined);
    return rest.length === poolSize && rest.every((vm) => vm.tags[TAG.pool] !== undefined && vm.ready) && vms.length === pods.length + poolSize;
  };

  before(async function () {
    this.timeout(600_000);
    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    await applyObjects(admin, (await loadManifests(LOCAL_OVERLAY_DIR)).filter((o) => o.kind !== "MutatingWebhookConfiguration"));
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });
    await cluster().addNodes([{ name: NODE }]);
    // Short: unix socket paths in the VM folders must stay under 108 bytes.
    dir = trackedTempDir("wp-e2e-");
    atExit(() => rmSync(dir, { recursive: true, force: true }));
    stateDir = join(dir, "state");
    policyFile = join(dir, "policy.json");
    await setPoolMin(2);
    kubeconfig = await serviceAccountKubeconfig(admin, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    provider = await createProvider({ name: "qemu", qemu: QEMU }, { clusterId: CLUSTER_ID, stateDir, log: pino({ level: "silent" }) });
    await start();
  });

  after(async function () {
    this.timeout(120_000);
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    await peerpods?.kill();
    for (const instance of provider ? await provider.list({ [TAG.cluster]: CLUSTER_ID }).catch(() => []) : []) await provider.delete(instance.id).catch(() => undefined);
    // Whatever happened above, leave no VM behind.
    for (const pid of dir ? await processesMentioning(`${dir}/`) : []) process.kill(pid, "SIGKILL");
    // peerpods was killed and closed nothing: with no VM left, this provider's close removes the VPC bridge.
    await provider?.close();
    await core.deleteNode({ name: NODE }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it("boots the pool to min 2 idle VMs, tagged as this cluster's pool", async () => {
    const vms = await waitIdle(2, "two idle pool VMs");
    for (const vm of vms) assert.deepEqual([vm.tags[TAG.cluster], vm.tags[TAG.podUid], vm.instanceType], [CLUSTER_ID, undefined, "small"]);
  });

  it("of three pods created at once, two get the idle VMs (hits), the third boots cold (miss), and the pool refills to 2", async () => {
    const pooled = new Set((await idle()).map((i) => i.id));
    // At once: a refill boot takes seconds, so none is ready before the third pod's claim.
    const names = ["wp-a", "wp-b", "wp-c"];
    const readyMs = await Promise.all(names.map(createReady));
    const claims = await Promise.all(names.map(async (name, index) => ({ name, ms: readyMs[index]!, peerPod: (await record(name))! })));
    const hits = claims.filter((c) => c.peerPod.status?.warmPool === "hit");
    const misses = claims.filter((c) => c.peerPod.status?.warmPool === "miss");
    assert.deepEqual([hits.length, misses.length], [2, 1], claims.map((c) => `${c.name}: ${c.peerPod.status?.warmPool}`).join(", "));
    console.log(`    created → VM ready: hits ${hits.map((c) => c.ms).join(" ms, ")} ms; miss ${misses[0]!.ms} ms`);
    for (const { name, peerPod } of hits) {
      assert.ok(pooled.has(peerPod.status!.instanceID!), `${name} got one of the idle VMs`);
      const vm = await provider.get(peerPod.status!.instanceID!);
      assert.equal(vm?.tags[TAG.pool], undefined, "the pool tag is gone");
      assert.equal(vm?.tags[TAG.podUid], peerPod.spec.podUID, "tagged with the pod's UID");
      assert.equal(vm?.name, peerPod.spec.instanceName);
      assert.match(vm?.tags[TAG.agentIdentity] ?? "", /^pool-/, "the VM keeps the agent certificate it booted with (the pod's data went over mutual TLS to it)");
    }
    assert.ok(!pooled.has(misses[0]!.peerPod.status!.instanceID!));
    await waitIdle(2, "the pool refilled to 2");
    assert.ok(await converged(2));
    const exposed = await metrics();
    assert.match(exposed, /^peerpods_warm_pool_claims_total\{result="hit"\} 2$/m);
    assert.match(exposed, /^peerpods_warm_pool_claims_total\{result="miss"\} 1$/m);
    assert.match(exposed, /^peerpods_warm_pool_idle_cost_per_hour 0.02$/m);
  });

  it("shrinking the policy to 0 deletes the idle VMs and leaves the pods' VMs alone", async () => {
    const podVms = (await live()).filter((i) => i.tags[TAG.podUid] !== undefined).map((i) => i.id);
    await setPoolMin(0);
    await waitFor(async () => (await pool()).length === 0, { timeoutMs: 60_000, intervalMs: 250, message: "no pool VM left" });
    assert.deepEqual((await live()).map((i) => i.id).sort(), podVms.sort());
    assert.ok(await converged(0));
  });

  it("a SIGKILL during a claim converges: the pod gets one VM, the pool is whole again, nothing leaks", async () => {
    await setPoolMin(2);
    await waitIdle(2, "the pool back at 2");
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("wp-d") });
    // Kill the moment the claim is recorded: the VM may or may not have been handed over yet.
    const claimed = await waitFor(async () => (await record("wp-d"))?.status?.instanceID, { timeoutMs: 30_000, intervalMs: 10, message: "the claim recorded" });
    await peerpods!.kill();
    const vm = await provider.get(claimed);
    console.log(`    killed with the claim recorded; the VM was ${vm?.tags[TAG.pool] === undefined ? "already handed over" : "still tagged as pool"}`);
    await start();
    await waitFor(() => converged(2), { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 500, message: "one VM per pod and a full pool after the restart" });
    assert.equal((await record("wp-d"))?.status?.instanceID, claimed, "the pod kept the VM it claimed");
  });

  it("deleting the pods deletes their VMs, and only the pool remains", async () => {
    await Promise.all(["wp-a", "wp-b", "wp-c", "wp-d"].map((name) => core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 })));
    await waitFor(async () => (await live()).every((i) => i.tags[TAG.pool] !== undefined), { timeoutMs: 60_000, intervalMs: 250, message: "only pool VMs left" });
    await waitFor(() => converged(2), { timeoutMs: 60_000, intervalMs: 500, message: "the pool whole" });
  });
});
