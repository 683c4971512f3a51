import assert from "node:assert/strict";
import type { EventRecorder } from "../kube/events.js";
import { silentLogger } from "../log/logger.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy, type PolicySpec } from "../policy/schema.js";
import { createProvider } from "../providers/sim/index.js";
import { cancelledBy } from "../providers/cancel.js";
import { TAG, type Provider } from "../providers/types.js";
import { ANNOTATION, VM_READY_CONDITION } from "../kube/annotations.js";
import { REFUSED_CONDITION, type PeerPod } from "../kube/peerpod.js";
import { Reconciler } from "./reconcile.js";
import { MemoryCluster } from "../test-support/memory-cluster.js";
import { VmBudget } from "./vm-budget.js";

const CLUSTER = "c1";
const policy = compilePolicy(defaultPolicy(), 1);
const limited = (limits: PolicySpec["limits"]) => compilePolicy({ ...defaultPolicy(), limits }, 2);

describe("Reconciler", () => {
  let cluster: MemoryCluster;
  let provider: Provider;
  /** As after a GC listing that missed the VM. */
  let verify = false;
  let current = policy;
  /** Shared by every reconciler of a test, as by the controller's. */
  let budget: VmBudget;
  /** The controller's: aborted when the worker stops. */
  let stopping: AbortController;

  /** `record` stands in for the PeerPod informer; by default it is up to date. */
  const reconciler = (record?: (key: string) => PeerPod | undefined): Reconciler => {
    const events: EventRecorder = { record: (_target, _type, reason) => cluster.reasons.push(reason) };
    return new Reconciler({
      clusterId: CLUSTER,
      provider: cancelledBy(provider, stopping.signal),
      writes: cluster,
      events,
      policy: () => current,
      budget,
      // copies, as an informer cache holds its own objects
      pods: { get: (key) => structuredClone(cluster.pods.get(key)) },
      records: { get: record ?? ((key) => structuredClone(cluster.records.get(key))) },
      bindTimes: { boundAt: () => Date.now() },
      ready: { wait: () => undefined, take: () => undefined },
      signal: stopping.signal,
      revisits: { mustVerify: () => verify },
      log: silentLogger,
    });
  };

  /** Reconciles a key until it reports done, as the queue would, each pass by a fresh reconciler (a restart). */
  const settle = async (key: string): Promise<number> => {
    for (let pass = 1; pass <= 200; pass++) {
      try {
        const result = await reconciler().reconcile(key);
        if (!result) return pass;
      } catch {
        // the queue retries after a backoff; here at once
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    throw new Error(`${key} did not settle`);
  };

  const vmsByPod = async (): Promise<Map<string, string[]>> => {
    const byPod = new Map<string, string[]>();
    for (const vm of await provider.list({ [TAG.cluster]: CLUSTER })) byPod.set(vm.tags[TAG.podUid]!, [...(byPod.get(vm.tags[TAG.podUid]!) ?? []), vm.id]);
    return byPod;
  };

  beforeEach(() => {
    cluster = new MemoryCluster();
    verify = false;
    current = policy;
    stopping = new AbortController();
    budget = new VmBudget(() => [...cluster.records.values()], (name) => current.instanceTypes.get(name)?.vcpus ?? 0);
  });
  afterEach(() => provider.close());

  it("gives a bound pod a record, a VM, and the vm-ready condition", async () => {
    provider = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    cluster.addPod("a");
    await settle("ns/a");
    const record = cluster.records.get("ns/a")!;
    assert.equal(record.status?.phase, "Ready");
    assert.deepEqual(await vmsByPod(), new Map([["uid-a", [record.status!.instanceID!]]]));
    assert.equal(cluster.pods.get("ns/a")!.status!.conditions![0]!.reason, "VMReady");
    assert.ok(cluster.reasons.includes("VMReady"));
  });

  it("keeps a terminating pod's VM through its grace period, so its containers stop in the VM, and deletes it once the pod is gone", async () => {
    provider = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    cluster.addPod("a");
    await settle("ns/a");
    cluster.pods.get("ns/a")!.metadata!.deletionTimestamp = new Date(Date.now() + 30_000);
    const result = await reconciler().reconcile("ns/a");
    assert.ok(result && result.requeueAfterMs > 30_000 && result.requeueAfterMs <= 35_000, `looked at again after the grace period: ${JSON.stringify(result)}`);
    assert.equal((await vmsByPod()).size, 1, "the VM stays while the kubelet stops the containers");
    cluster.pods.delete("ns/a");
    await settle("ns/a");
    assert.equal((await vmsByPod()).size, 0);
  });

  it("records VMReady once when its PeerPod cache has not caught up with its own Ready patch", async () => {
    provider = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    cluster.addPod("a");
    const lagging = new Map<string, PeerPod>();
    const worker = reconciler((key) => lagging.get(key) ?? structuredClone(cluster.records.get(key)));
    await worker.reconcile("ns/a");
    const stored = cluster.records.get("ns/a")!;
    assert.equal(stored.status?.phase, "Ready");
    // the informer still holds the record from before the Ready patch
    lagging.set("ns/a", { ...structuredClone(stored), status: { ...stored.status, phase: "Creating" } });
    await worker.reconcile("ns/a");
    assert.deepEqual(cluster.reasons.filter((r) => r === "VMReady"), ["VMReady"]);
  });

  it("converges on exactly one VM per pod when the cloud loses answers and the apiserver fails between steps", async () => {
    provider = await createProvider(
      { createMs: 0, readyMs: 0, deleteMs: 0, crashRate: 0.5, errorRate: 0.2, seed: 11, inventoryFile: null },
      { clusterId: CLUSTER, stateDir: "", log: silentLogger },
    );
    cluster.failureRate = 0.3;
    const names = Array.from({ length: 15 }, (_, i) => `p${i}`);
    names.forEach((name) => cluster.addPod(name));
    const passes = await Promise.all(names.map((name) => settle(`ns/${name}`)));
    assert.ok(passes.some((n) => n > 2), "faults forced retries");
    const vms = await vmsByPod();
    assert.equal(vms.size, 15);
    for (const name of names) {
      assert.equal(vms.get(`uid-${name}`)?.length, 1, `one VM for ${name}`);
      assert.equal(cluster.records.get(`ns/${name}`)?.status?.instanceID, vms.get(`uid-${name}`)![0]);
    }

    // and every pod deleted: every VM goes, every record is released, even through the same faults
    cluster.pods.clear();
    await Promise.all(names.map((name) => settle(`ns/${name}`)));
    assert.equal((await provider.list({ [TAG.cluster]: CLUSTER })).length, 0);
    assert.equal(cluster.records.size, 0);
  });

  it("leaves no VM behind for a pod deleted while its VM is being created, even when the create's answer is lost", async () => {
    provider = await createProvider({ createMs: 60, readyMs: 0, deleteMs: 0, crashRate: 1, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    cluster.addPod("a");
    const first = reconciler().reconcile("ns/a");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await provider.list({})).length, 1, "the create is in flight");
    cluster.pods.delete("ns/a");
    await assert.rejects(first, /connection reset/);
    assert.equal(cluster.records.get("ns/a")?.status?.instanceID, undefined, "the instance id never reached the record");
    await settle("ns/a");
    assert.equal((await provider.list({})).length, 0);
    assert.equal(cluster.records.size, 0);
  });

  it("replaces a VM that vanished behind its back under a new name, and says so", async () => {
    provider = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    cluster.addPod("a");
    await settle("ns/a");
    const lost = cluster.records.get("ns/a")!.status!.instanceID!;
    await provider.delete(lost);
    await settle("ns/a");
    assert.equal(cluster.records.get("ns/a")!.status!.instanceID, lost, "a served pod's VM is not asked after on every update");
    verify = true;
    await settle("ns/a");
    const record = cluster.records.get("ns/a")!;
    assert.notEqual(record.status!.instanceID, lost);
    assert.equal(record.spec.instanceName, "pp-uid-a-r1");
    assert.equal(record.status!.phase, "Ready");
    assert.ok(cluster.reasons.includes("VMLost"));
    assert.equal((await provider.list({})).length, 1);
  });

  it("records a quota failure as such and keeps the pod without a VM", async () => {
    provider = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, capacity: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    cluster.addPod("a");
    await assert.rejects(reconciler().reconcile("ns/a"), /instance limit of 0 reached/);
    const record = cluster.records.get("ns/a")!;
    assert.equal(record.status?.phase, "Failed");
    assert.match(record.status!.message!, /quota/);
    assert.ok(cluster.reasons.includes("VMQuotaExceeded"));
  });

  it("refuses for good a pod whose VM the provider cannot make, and says why once", async () => {
    provider = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    cluster.addPod("a");
    cluster.pods.get("ns/a")!.metadata!.annotations![ANNOTATION.instanceType] = "gone-from-the-catalog";
    assert.equal(await reconciler().reconcile("ns/a"), undefined, "done, not retried");
    const record = cluster.records.get("ns/a")!;
    assert.equal(record.status?.phase, "Failed");
    assert.match(record.status!.message!, /instance type "gone-from-the-catalog" is not in the policy's catalog/);
    assert.deepEqual(record.status?.conditions?.map((c) => [c.type, c.status]), [[REFUSED_CONDITION, "True"]]);
    assert.equal(cluster.pods.get("ns/a")!.status!.conditions!.find((c) => c.type === VM_READY_CONDITION)?.reason, "VMRefused");
    assert.equal(await reconciler().reconcile("ns/a"), undefined);
    assert.deepEqual(cluster.reasons, ["VMRefused"]);
    assert.equal((await provider.list({})).length, 0);

    cluster.pods.delete("ns/a");
    await settle("ns/a");
    assert.equal(cluster.records.size, 0, "the record is released with its pod");
  });

  it("records no failure for a create cancelled because the worker stops", async () => {
    provider = await createProvider({ createMs: 60_000, readyMs: 0, deleteMs: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    cluster.addPod("a");
    const reconciling = reconciler().reconcile("ns/a");
    await new Promise((resolve) => setTimeout(resolve, 20));
    stopping.abort(new Error("the worker is stopping"));
    await assert.rejects(reconciling, /the worker is stopping/);
    assert.equal(cluster.records.get("ns/a")!.status?.phase, undefined);
    assert.deepEqual(cluster.reasons, []);
  });

  describe("cluster-wide limits", () => {
    beforeEach(async () => {
      provider = await createProvider({ createMs: 20, readyMs: 0, deleteMs: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
    });

    it("keeps a pod over maxVMs waiting with the reason on its record and one Event, until a VM goes", async () => {
      current = limited({ maxVMs: 2 });
      for (const name of ["a", "b", "c"]) cluster.addPod(name);
      await settle("ns/a");
      await settle("ns/b");
      for (let pass = 0; pass < 2; pass++) assert.deepEqual(await reconciler().reconcile("ns/c"), { requeueAfterMs: 30_000 });
      const waiting = cluster.records.get("ns/c")!;
      assert.equal(waiting.status?.phase, "Pending");
      assert.match(waiting.status!.message!, /waiting for room under the policy's limits: peer-pod limit maxVMs=2 reached: 2 VMs in use/);
      assert.deepEqual(cluster.reasons.filter((r) => r === "VMLimitReached"), ["VMLimitReached"]);
      assert.deepEqual(budget.waiting(), ["ns/c"]);
      assert.equal((await vmsByPod()).size, 2);

      cluster.pods.delete("ns/a");
      await settle("ns/a");
      await settle("ns/c");
      assert.equal(cluster.records.get("ns/c")!.status?.phase, "Ready");
      assert.deepEqual([...(await vmsByPod()).keys()].sort(), ["uid-b", "uid-c"]);
    });

    it("never passes maxVCPUs while creates run at once, and lets the waiting pods through when the limit is raised", async () => {
      current = limited({ maxVCPUs: 3 });
      const names = ["a", "b", "c", "d", "e", "f"];
      names.forEach((name) => cluster.addPod(name));
      const vcpus = current.instanceTypes.get("small")!.vcpus;
      const fits = Math.floor(3 / vcpus);
      await Promise.all(names.map((name) => reconciler().reconcile(`ns/${name}`)));
      assert.equal((await vmsByPod()).size, fits);
      // by the budget, not by the requeue delay: a VM still booting is looked at again after 30 s too
      assert.equal(budget.waiting().length, names.length - fits);

      current = limited({ maxVCPUs: 100 });
      await Promise.all(names.map((name) => settle(`ns/${name}`)));
      assert.equal((await vmsByPod()).size, names.length);
      assert.deepEqual(budget.waiting(), []);
    });

    it("does not count a VM whose create failed", async () => {
      provider = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, errorRate: 1, inventoryFile: null }, { clusterId: CLUSTER, stateDir: "", log: silentLogger });
      current = limited({ maxVMs: 1 });
      cluster.addPod("a");
      cluster.addPod("b");
      await assert.rejects(reconciler().reconcile("ns/a"));
      assert.deepEqual(budget.usage("ns/b"), { vms: 0, vcpus: 0 });
    });
  });
});
