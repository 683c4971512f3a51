import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, setHeaderOptions, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../src/kube/annotations.js";
import { TAG } from "../src/providers/types.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../src/kube/peerpod.js";
import { atExit } from "./cluster/process.js";
import { createNamespace, giveVmSlots, installLocalOverlay } from "./support/suite.js";
import { cluster } from "./setup.js";
import { applyObjects, withWebhookUrl, removeWebhookConfigs } from "./support/manifests.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { leaderGauge } from "./support/leader.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const NAMESPACE = "wk-e2e";
const CLUSTER_ID = "wk-e2e";
const NODES = ["wk-node-1", "wk-node-2", "wk-node-3"];
const VM_RESOURCE = "kata.peerpods.io/vm";

interface SimRecord {
  id: string;
  name: string;
  tags: Record<string, string>;
}

describe("worker: one VM per peer pod on the local control plane (sim provider)", function () {
  this.timeout(120_000);
  let admin: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let webhookConfig: KubernetesObject[];
  let kubeconfig: string;
  let dir: string;
  let inventoryFile: string;
  let policyFile: string;
  const replicas: Peerpods[] = [];

  const start = async (): Promise<Peerpods> => {
    const peerpods = await startPeerpods({
      kubeconfig,
      args: ["--parts=webhook,worker", `--policy-file=${policyFile}`, `--cluster-id=${CLUSTER_ID}`, "--gc-interval=2", "--gc-grace=10"],
    });
    replicas.push(peerpods);
    return peerpods;
  };
  /** Points the cluster's webhook at this replica and waits until pods are mutated through it. */
  const serveWebhookFrom = async (peerpods: Peerpods): Promise<void> => {
    await applyObjects(admin, withWebhookUrl(webhookConfig, peerpods.webhookUrl, peerpods.caBundle));
    await waitFor(
      async () => {
        const probe = await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("wk-probe"), dryRun: "All" });
        return probe.metadata?.annotations?.["peerpods.io/instance-type"] !== undefined && probe.metadata?.uid !== undefined;
      },
      { timeoutMs: 20_000, message: "the apiserver to call the webhook" },
    );
  };

  /** The sim's VMs for this suite's namespace (a worker serves every peer pod of the cluster, other suites' too). */
  const inventory = async (): Promise<SimRecord[]> => {
    try {
      const { instances } = JSON.parse(await readFile(inventoryFile, "utf8")) as { instances: SimRecord[] };
      return instances.filter((vm) => vm.tags[TAG.cluster] === CLUSTER_ID && vm.tags[TAG.namespace] === NAMESPACE);
    } catch {
      return [];
    }
  };
  const peerPods = async (): Promise<PeerPod[]> =>
    ((await custom.listNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE })) as { items: PeerPod[] })
      .items;
  const livePods = async (): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: NAMESPACE })).items.filter((p) => !p.metadata?.deletionTimestamp);

  const createPods = (prefix: string, count: number): Promise<V1Pod[]> =>
    Promise.all(Array.from({ length: count }, (_, i) => core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod(`${prefix}-${i}`) })));
  const deletePods = (names: string[]): Promise<unknown> =>
    Promise.all(names.map((name) => core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 })));

  /** Exactly one VM per live peer pod of the namespace and no other VM of this cluster; every PeerPod Ready. */
  const converged = async (): Promise<boolean> => {
    const pods = await livePods();
    const uids = pods.map((p) => p.metadata!.uid!).sort();
    const vms = await inventory();
    const vmUids = vms.map((vm) => vm.tags[TAG.podUid]!).sort();
    if (JSON.stringify(uids) !== JSON.stringify(vmUids)) return false;
    const records = await peerPods();
    if (records.length !== pods.length || records.some((r) => r.status?.phase !== "Ready")) return false;
    return pods.every((pod) => vmReadyByWorker(pod));
  };
  const waitConverged = (message: string, timeoutMs = 60_000): Promise<boolean> => waitFor(converged, { timeoutMs, intervalMs: 500, message });

  before(async function () {
    this.timeout(180_000);
    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    webhookConfig = await installLocalOverlay(admin);
    await createNamespace(core, NAMESPACE);
    await cluster().addNodes(NODES.map((name) => ({ name })));
    await giveVmSlots(core, NODES, VM_RESOURCE, 100);

    dir = mkdtempSync(join(tmpdir(), "wk-e2e-"));
    atExit(() => rmSync(dir, { recursive: true, force: true }));
    inventoryFile = join(dir, "sim-inventory.json");
    policyFile = join(dir, "policy.json");
    // A flaky cloud: slow-ish creates, some lost responses and 5xx errors, to exercise idempotency on every run.
    const sim = { createMs: { median: 150, p99: 600 }, readyMs: { median: 300, p99: 1000 }, deleteMs: 30, crashRate: 0.1, errorRate: 0.05, inventoryFile };
    await writeFile(policyFile, JSON.stringify({ provider: { name: "sim", sim } }));
    kubeconfig = await serviceAccountKubeconfig(admin, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    await serveWebhookFrom(await start());
  });

  after(async function () {
    this.timeout(90_000);
    // the worker releases every PeerPod (finalizer) and VM before it goes, so the namespace can go too
    await core.deleteCollectionNamespacedPod({ namespace: NAMESPACE, gracePeriodSeconds: 0 }).catch(() => undefined);
    await waitFor(async () => (await peerPods()).length === 0 && (await inventory()).length === 0, { timeoutMs: 45_000, intervalMs: 500, message: "the worker to clean up" }).catch(
      (error: unknown) => console.error(`  cleanup: ${(error as Error).message}`),
    );
    await Promise.all(replicas.map((r) => r.kill()));
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    for (const name of NODES) await core.deleteNode({ name }).catch(() => undefined);
    await removeWebhookConfigs(admin, webhookConfig);
    rmSync(dir, { recursive: true, force: true });
  });

  it("gives 20 peer pods 20 VMs, marks them ready, and lists them as PeerPods", async () => {
    await createPods("wk-a", 20);
    await waitConverged("20 pods with one ready VM each");
    const records = await peerPods();
    assert.equal(records.length, 20);
    assert.equal((await inventory()).length, 20);
    for (const record of records) {
      assert.match(record.status!.instanceID!, /^sim-/);
      assert.equal(record.spec.provider, "sim");
      assert.ok(record.metadata.finalizers?.includes("peerpods.io/vm"));
    }
    // what `kubectl get peerpods` prints: the server-side table with the CRD's printer columns
    const table = (await custom.listNamespacedCustomObject(
      { group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE },
      setHeaderOptions("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io"),
    )) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    assert.deepEqual(
      table.columnDefinitions.map((c) => c.name).filter((n) => ["Name", "Phase", "Instance", "Type", "Node"].includes(n)),
      ["Name", "Phase", "Instance", "Type", "Node"],
    );
    assert.equal(table.rows.length, 20);
    assert.ok(table.rows.every((row) => row.cells[1] === "Ready" && String(row.cells[2]).startsWith("sim-")));
  });

  it("deletes the VMs of 10 deleted pods and keeps the other 10", async () => {
    await deletePods(Array.from({ length: 10 }, (_, i) => `wk-a-${i}`));
    await waitFor(async () => (await livePods()).length === 10 && (await inventory()).length === 10 && (await peerPods()).length === 10, {
      timeoutMs: 30_000,
      intervalMs: 250,
      message: "10 VMs and 10 PeerPods left",
    });
    assert.ok(await converged());
  });

  it("after a SIGKILL amid 50 creates and 25 deletes, converges to one VM per live pod and no leak", async () => {
    const [replica] = replicas.splice(0);
    await createPods("wk-c", 50);
    const deletes = deletePods(Array.from({ length: 25 }, (_, i) => `wk-c-${i * 2}`));
    await new Promise((resolve) => setTimeout(resolve, 400));
    await replica!.kill();
    await deletes;
    const inFlight = (await inventory()).length;
    const restarted = await start();
    await serveWebhookFrom(restarted);
    await waitConverged("one VM per live pod after the restart", 90_000);
    assert.equal((await livePods()).length, 35);
    const vms = await inventory();
    assert.equal(vms.length, 35, `inventory had ${inFlight} VMs at the kill`);
    assert.equal(new Set(vms.map((vm) => vm.tags[TAG.podUid])).size, 35);
  });

  it("replaces a VM deleted behind its back and shows it on the PeerPod", async () => {
    const [record] = (await peerPods()).filter((r) => r.metadata.name === "wk-a-15");
    const lost = record!.status!.instanceID!;
    const replaced = await waitFor(
      async () => {
        const now = (await peerPods()).find((r) => r.metadata.name === "wk-a-15");
        if (now?.status?.instanceID && now.status.instanceID !== lost && now.status.phase === "Ready") return now;
        const vms = await inventory();
        // play the cloud console; the sim may have rewritten its file meanwhile, so remove again until it sticks
        if (vms.some((vm) => vm.id === lost)) {
          const { instances } = JSON.parse(await readFile(inventoryFile, "utf8")) as { instances: SimRecord[] };
          await writeFile(inventoryFile, JSON.stringify({ version: 1, instances: instances.filter((vm) => vm.id !== lost) }));
        }
        return undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, message: `a replacement for VM ${lost}` },
    );
    assert.equal(replaced.spec.instanceName, `pp-${record!.spec.podUID}-r1`);
    const events = await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: "involvedObject.name=wk-a-15" });
    assert.ok(events.items.some((e) => e.reason === "VMLost" && e.message?.includes(lost)), "a VMLost event names the lost VM");
    await waitConverged("the replacement ready and nothing else changed");
  });

  it("with two replicas only the leader creates, and the other takes over when it dies", async () => {
    const first = replicas[0]!;
    const second = await start();
    await createPods("wk-e", 5);
    await waitConverged("5 more pods served");
    const creators = (p: Peerpods): number => p.logs().filter((l) => l.msg === "VM created" && String(l.pod).startsWith(`${NAMESPACE}/wk-e-`)).length;
    assert.ok(creators(first) >= 5, "the leader created the VMs");
    assert.equal(creators(second), 0, "the standby created none");
    assert.equal(await leaderGauge(second, "peerpods-worker"), 0);
    assert.equal(await leaderGauge(first, "peerpods-worker"), 1);

    const killedAt = Date.now();
    await first.kill();
    replicas.splice(replicas.indexOf(first), 1);
    await serveWebhookFrom(second);
    const tookOver = await waitFor(() => second.logs().find((l) => l.msg === "became leader"), { timeoutMs: 30_000, message: "the standby to take the lease" });
    const tookOverMs = Date.parse(String(tookOver.time)) - killedAt;
    assert.ok(tookOverMs < 15_000 + 2_400 + 1_000, `took over ${tookOverMs} ms after the leader died`);
    await createPods("wk-f", 5);
    await waitConverged("pods created after the failover served by the new leader");
    await waitFor(() => second.logs().some((l) => l.msg === "VM created" && String(l.pod).startsWith(`${NAMESPACE}/wk-f-`)), { timeoutMs: 5_000, message: "the new leader to log the VMs it created" });
  });

  it("a replica that cannot start the worker gives the Lease to another and reports not ready", async () => {
    const leader = replicas.at(-1)!;
    // This replica's sim inventory sits under a file: its provider, and so its worker, cannot start.
    const brokenPolicy = join(dir, "broken-policy.json");
    await writeFile(brokenPolicy, JSON.stringify({ provider: { name: "sim", sim: { inventoryFile: join(policyFile, "inventory.json") } } }));
    const broken = await startPeerpods({ kubeconfig, args: ["--parts=webhook,worker", `--policy-file=${brokenPolicy}`, `--cluster-id=${CLUSTER_ID}`] });
    replicas.push(broken);
    await leader.stop();
    replicas.splice(replicas.indexOf(leader), 1);
    await waitFor(() => broken.logs().find((l) => l.msg === "could not start while leading; the Lease goes to another replica"), {
      timeoutMs: 30_000,
      message: "the broken replica to lead, fail and resign",
    });
    const readyz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${broken.metricsPort}/readyz`)).status;
    await waitFor(async () => (await readyz()) === 503, { timeoutMs: 5_000, message: "/readyz of the broken replica to fail" });

    const healthy = await start();
    await serveWebhookFrom(healthy);
    await waitFor(() => healthy.logs().find((l) => l.msg === "became leader"), { timeoutMs: 20_000, message: "the healthy replica to take the released Lease" });
    await createPods("wk-h", 3);
    await waitConverged("pods served by the replica that took over");
    assert.equal(await leaderGauge(broken, "peerpods-worker"), 0);
    assert.equal(await readyz(), 503, "still not ready: its worker never started");
  });

  it("holds a bound pod past limits.maxVMs with the reason on its PeerPod and an Event, and serves it once a VM goes", async () => {
    const leader = replicas.at(-1)!;
    const policy = JSON.parse(await readFile(policyFile, "utf8")) as Record<string, unknown>;
    const setPolicy = async (next: Record<string, unknown>): Promise<void> => {
      const reloads = leader.logs().filter((l) => l.msg === "policy file reloaded").length;
      await writeFile(policyFile, JSON.stringify(next));
      await waitFor(() => leader.logs().filter((l) => l.msg === "policy file reloaded").length > reloads, { timeoutMs: 15_000, message: "the policy file reloaded" });
    };
    // every VM the worker holds counts, other suites' too
    const all = (await custom.listClusterCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL })) as { items: PeerPod[] };
    const maxVMs = all.items.filter((r) => r.status?.instanceID).length + 1;
    await setPolicy({ ...policy, limits: { maxVMs } });
    try {
      await createPods("wk-g", 2);
      const waiting = await waitFor(
        async () => {
          const records = (await peerPods()).filter((r) => r.metadata.name.startsWith("wk-g-"));
          return records.length === 2 && records.some((r) => r.status?.phase === "Ready") ? records.find((r) => r.status?.phase === "Pending" && r.status.message) : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250, message: "one wk-g pod served and the other waiting for room" },
      );
      assert.match(waiting.status!.message!, new RegExp(`waiting for room under the policy's limits: peer-pod limit maxVMs=${maxVMs} reached`));
      assert.equal(waiting.status!.instanceID ?? undefined, undefined);
      const events = await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: `involvedObject.name=${waiting.metadata.name}` });
      assert.equal(events.items.filter((e) => e.reason === "VMLimitReached").length, 1);
      assert.equal((await inventory()).filter((vm) => vm.tags[TAG.podName]?.startsWith("wk-g-")).length, 1);

      await deletePods(["wk-a-10"]);
      await waitConverged("the waiting pod served once a VM went");
    } finally {
      await setPolicy(policy);
    }
  });
});

function peerPod(name: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      runtimeClassName: "kata-remote",
      containers: [{ name: "app", image: "busybox", resources: { requests: { cpu: "500m", memory: "256Mi" } } }],
    },
  };
}

/** The vm-ready condition as the worker writes it. */
function vmReadyByWorker(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === VM_READY_CONDITION && c.status === "True" && c.reason === "VMReady") ?? false;
}
