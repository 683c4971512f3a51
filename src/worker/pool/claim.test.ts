import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION } from "../../kube/annotations.js";
import { silentLogger } from "../../log/logger.js";
import { compilePolicy, type CompiledPolicy } from "../../policy/compiled.js";
import { parsePolicy } from "../../policy/schema.js";
import { TokenBucket } from "../../providers/ratelimit.js";
import { createProvider } from "../../providers/sim/index.js";
import { TAG, type Instance, type Provider } from "../../providers/types.js";
import { PEERPOD_API_VERSION, PEERPOD_KIND, VM_FINALIZER, type PeerPod, type PeerPodSpec, type PeerPodStatus } from "../../kube/peerpod.js";
import { Reconciler } from "../reconcile.js";
import type { ClusterWrites } from "../cluster-writes.js";
import { heldInstanceIds, WarmPool } from "./manager.js";

const CLUSTER = "c1";

function policyWithPool(min: number): CompiledPolicy {
  const parsed = parsePolicy({ provider: { name: "sim" }, warmPool: { pools: [{ instanceType: "small", min }] } });
  assert.ok(parsed.ok);
  return compilePolicy(parsed.spec, min + 1);
}

function pod(name: string): V1Pod {
  return {
    metadata: { name, namespace: "ns", uid: `uid-${name}`, annotations: { [ANNOTATION.instanceType]: "small" } },
    spec: { nodeName: "node-1", runtimeClassName: "kata-remote", containers: [] },
    status: { phase: "Pending" },
  };
}

type WriteOp = "createRecord" | "patchRecordStatus" | "patchRecordSpec" | "releaseRecord" | "setPodCondition";

/** The PeerPod records and pod conditions in memory; `crash` may kill the process before or after a write lands. */
class MemoryWrites implements ClusterWrites {
  readonly records = new Map<string, PeerPod>();
  readonly vmReady = new Map<string, string>();
  crash: ((op: WriteOp, when: "before" | "after", status?: PeerPodStatus) => boolean) | undefined;

  #check(op: WriteOp, when: "before" | "after", status?: PeerPodStatus): void {
    if (this.crash?.(op, when, status)) {
      this.crash = undefined;
      throw new Error(`crash ${when} ${op}`);
    }
  }

  async createRecord(p: V1Pod, spec: PeerPodSpec): Promise<PeerPod> {
    const key = `${p.metadata!.namespace}/${p.metadata!.name}`;
    this.#check("createRecord", "before");
    const record: PeerPod = this.records.get(key) ?? {
      apiVersion: PEERPOD_API_VERSION,
      kind: PEERPOD_KIND,
      metadata: { name: p.metadata!.name!, namespace: p.metadata!.namespace!, uid: `rec-${spec.podUID}`, finalizers: [VM_FINALIZER] },
      spec,
    };
    this.records.set(key, record);
    this.#check("createRecord", "after");
    return structuredClone(record);
  }

  async getRecord(namespace: string, name: string): Promise<PeerPod | undefined> {
    return structuredClone(this.records.get(`${namespace}/${name}`));
  }

  async patchRecordStatus(record: PeerPod, status: PeerPodStatus): Promise<PeerPod> {
    this.#check("patchRecordStatus", "before", status);
    const stored = this.records.get(`${record.metadata.namespace}/${record.metadata.name}`)!;
    const merged: Record<string, unknown> = { ...stored.status };
    for (const [field, value] of Object.entries(status)) {
      if (value === null) delete merged[field];
      else merged[field] = value;
    }
    stored.status = merged as PeerPodStatus;
    this.#check("patchRecordStatus", "after", status);
    return structuredClone(stored);
  }

  async patchRecordSpec(record: PeerPod, spec: Partial<PeerPodSpec>): Promise<PeerPod> {
    const stored = this.records.get(`${record.metadata.namespace}/${record.metadata.name}`)!;
    stored.spec = { ...stored.spec, ...spec };
    return structuredClone(stored);
  }

  async releaseRecord(record: PeerPod): Promise<void> {
    this.records.delete(`${record.metadata.namespace}/${record.metadata.name}`);
  }

  async setPodCondition(p: V1Pod, status: "True" | "False"): Promise<void> {
    this.#check("setPodCondition", "before");
    this.vmReady.set(p.metadata!.uid!, status);
  }
}

describe("warm pool claims with the sim provider, and crashes at every step", () => {
  let dir: string;
  let sim: Provider;
  let writes: MemoryWrites;
  let pods: Map<string, V1Pod>;
  let policy: CompiledPolicy;
  let running: WarmPool[];

  /** A fresh peerpods process: no memory but the cloud and the records. */
  const fromWrites = (key: string): PeerPod | undefined => structuredClone(writes.records.get(key));
  const restart = (provider: Provider = sim, record: (key: string) => PeerPod | undefined = fromWrites): { pool: WarmPool; reconciler: Reconciler } => {
    const pool = new WarmPool({
      provider,
      clusterId: CLUSTER,
      policy: () => policy,
      claimedIds: () => heldInstanceIds(writes.records.values()),
      intervalMs: 60_000,
      bootTimeoutMs: 60_000,
      refill: new TokenBucket(1000, 1000),
      maxConcurrentCreates: 10,
      log: silentLogger,
    });
    running.push(pool);
    const reconciler = new Reconciler({
      clusterId: CLUSTER,
      provider,
      writes,
      events: { record: () => undefined },
      policy: () => policy,
      pods: { get: (key) => pods.get(key) },
      records: { get: record },
      bindTimes: { boundAt: () => Date.now() },
      ready: { wait: () => undefined, take: () => undefined },
      signal: new AbortController().signal,
      revisits: { mustVerify: () => false },
      pool,
      log: silentLogger,
    });
    return { pool, reconciler };
  };

  const cloud = (): Promise<Instance[]> => sim.list({ [TAG.cluster]: CLUSTER });
  const poolVms = async (): Promise<Instance[]> => (await cloud()).filter((i) => i.tags[TAG.pool] !== undefined);

  /** Syncs until the pool's boots are listed and nothing is left to do. */
  const settle = async (pool: WarmPool): Promise<void> => {
    for (let round = 0; round < 20; round++) {
      const before = JSON.stringify((await cloud()).map((i) => [i.id, i.tags]).sort());
      await pool.sync();
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (JSON.stringify((await cloud()).map((i) => [i.id, i.tags]).sort()) === before) return;
    }
    throw new Error("the pool did not settle");
  };

  const addPod = (name: string): string => {
    pods.set(`ns/${name}`, pod(name));
    return `ns/${name}`;
  };

  const reconcileUntilDone = async (reconciler: Reconciler, key: string): Promise<void> => {
    for (let i = 0; i < 5; i++) await reconciler.reconcile(key);
  };

  /** Each live pod has exactly one VM, tagged for it, and every other VM of the cluster is an unclaimed pool VM. */
  const assertConverged = async (poolSize: number): Promise<void> => {
    const vms = await cloud();
    for (const [key, p] of pods) {
      const owned = vms.filter((vm) => vm.tags[TAG.podUid] === p.metadata!.uid);
      assert.equal(owned.length, 1, `${key} has ${owned.length} VMs`);
      assert.equal(owned[0]!.tags[TAG.pool], undefined);
      assert.equal(writes.records.get(key)?.status?.instanceID, owned[0]!.id);
      assert.equal(writes.records.get(key)?.status?.phase, "Ready");
      assert.equal(writes.vmReady.get(p.metadata!.uid!), "True");
    }
    const rest = vms.filter((vm) => vm.tags[TAG.podUid] === undefined);
    assert.ok(
      rest.every((vm) => vm.tags[TAG.pool] !== undefined),
      "no VM without an owner",
    );
    assert.equal(rest.length, poolSize, "pool size");
    assert.equal(vms.length, pods.size + poolSize, "nothing leaked");
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pool-"));
    sim = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, claimMs: 0, inventoryFile: null }, { clusterId: CLUSTER, stateDir: dir, log: silentLogger });
    writes = new MemoryWrites();
    pods = new Map();
    policy = policyWithPool(2);
    running = [];
  });

  afterEach(async () => {
    await Promise.all(running.map((pool) => pool.stop()));
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("a hit: the pod gets an idle VM with its data and tags, the PeerPod says hit, and the pool refills", async () => {
    const { pool, reconciler } = restart();
    await settle(pool);
    const idle = (await poolVms()).map((i) => i.id);
    assert.equal(idle.length, 2);
    const key = addPod("a");
    await reconcileUntilDone(reconciler, key);
    const record = writes.records.get(key)!;
    assert.equal(record.status?.warmPool, "hit");
    assert.ok(idle.includes(record.status!.instanceID!));
    const vm = await sim.get(record.status!.instanceID!);
    assert.equal(vm?.name, record.spec.instanceName, "a later create for the pod finds this VM");
    await settle(pool);
    await assertConverged(2);
  });

  it("a miss: with the pool empty the pod's VM is booted cold, and the PeerPod says miss", async () => {
    policy = policyWithPool(1);
    const { pool, reconciler } = restart();
    await settle(pool);
    const [first, second] = [addPod("a"), addPod("b")];
    await reconcileUntilDone(reconciler, first);
    await reconcileUntilDone(reconciler, second);
    assert.equal(writes.records.get(first)?.status?.warmPool, "hit");
    assert.equal(writes.records.get(second)?.status?.warmPool, "miss");
    await settle(pool);
    await assertConverged(1);
  });

  it("gives one idle VM to one pod only, however many ask at once", async () => {
    const { pool, reconciler } = restart();
    await settle(pool);
    const keys = ["a", "b", "c", "d"].map(addPod);
    await Promise.all(keys.map((key) => reconcileUntilDone(reconciler, key)));
    const hits = keys.filter((key) => writes.records.get(key)?.status?.warmPool === "hit");
    assert.equal(hits.length, 2);
    await settle(pool);
    await assertConverged(2);
  });

  it("claims once per pod even while the informer's copy of the record lags behind", async () => {
    const withoutStatus = (key: string): PeerPod | undefined => {
      const record = fromWrites(key);
      return record && { ...record, status: undefined };
    };
    const { pool, reconciler } = restart(sim, withoutStatus);
    await settle(pool);
    const key = addPod("a");
    await reconcileUntilDone(reconciler, key);
    assert.equal((await poolVms()).length, 1, "one pool VM left unclaimed");
    await settle(pool);
    await assertConverged(2);
  });

  const crashes: [string, (op: WriteOp, when: "before" | "after", status?: PeerPodStatus) => boolean][] = [
    ["before the claim is recorded", (op, when, status) => op === "patchRecordStatus" && when === "before" && status?.warmPool === "hit"],
    ["after the claim is recorded, before the hand-over", (op, when, status) => op === "patchRecordStatus" && when === "after" && status?.warmPool === "hit"],
    ["after the hand-over, before the pod is told", (op, when) => op === "setPodCondition" && when === "before"],
  ];
  for (const [moment, crash] of crashes) {
    it(`a crash ${moment} converges to one VM for the pod and a full pool, even with the pool shrunk meanwhile`, async () => {
      const first = restart();
      await settle(first.pool);
      const key = addPod("a");
      writes.crash = crash;
      await assert.rejects(reconcileUntilDone(first.reconciler, key), /crash/);
      await first.pool.stop();
      const recorded = writes.records.get(key)?.status?.instanceID;
      // The new process starts with a smaller pool: the claimed VM must survive the shrink.
      policy = policyWithPool(1);
      const second = restart();
      await settle(second.pool);
      await reconcileUntilDone(second.reconciler, key);
      await settle(second.pool);
      await assertConverged(1);
      if (recorded) assert.equal(writes.records.get(key)?.status?.instanceID, recorded, "the pod keeps the VM it claimed");
      else assert.equal(writes.records.get(key)?.status?.warmPool, "hit", "the unrecorded claim's VM went back to the pool and was claimed again");
    });
  }

  it("a crash in the middle of the provider's hand-over is finished by the next process", async () => {
    const first = restart();
    await settle(first.pool);
    const failing: Provider = {
      ...sim,
      name: sim.name,
      create: (spec) => sim.create(spec),
      get: (id) => sim.get(id),
      list: (tags) => sim.list(tags),
      delete: (id) => sim.delete(id),
      health: () => sim.health(),
      close: () => sim.close(),
      claim: () => Promise.reject(new Error("killed while retagging")),
    };
    await first.pool.stop();
    const dying = restart(failing);
    await settle(dying.pool);
    const key = addPod("a");
    await assert.rejects(reconcileUntilDone(dying.reconciler, key), /killed/);
    await dying.pool.stop();
    const second = restart();
    await reconcileUntilDone(second.reconciler, key);
    await settle(second.pool);
    await assertConverged(2);
  });

  it("a pod deleted after its claim was recorded takes the pool VM with it", async () => {
    const first = restart();
    await settle(first.pool);
    const key = addPod("a");
    writes.crash = crashes[1]![1];
    await assert.rejects(reconcileUntilDone(first.reconciler, key), /crash/);
    const claimed = writes.records.get(key)!.status!.instanceID!;
    pods.delete(key);
    const second = restart();
    await reconcileUntilDone(second.reconciler, key);
    assert.equal(writes.records.size, 0);
    assert.equal(await sim.get(claimed), undefined);
    await settle(second.pool);
    await assertConverged(2);
  });

  it("makes room for a pod's cold boot by deleting an idle VM when the cloud is full", async () => {
    await sim.close();
    sim = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, claimMs: 0, capacity: 2, inventoryFile: null }, { clusterId: CLUSTER, stateDir: dir, log: silentLogger });
    policy = compilePolicy(
      (parsePolicy({ instanceTypes: [{ name: "small", vcpus: 1, memoryMiB: 512 }, { name: "big", vcpus: 2, memoryMiB: 1024 }], warmPool: { pools: [{ instanceType: "small", min: 2 }] } }) as { ok: true; spec: CompiledPolicy["spec"] }).spec,
      1,
    );
    const { pool, reconciler } = restart();
    await settle(pool);
    assert.equal((await poolVms()).length, 2);
    const key = addPod("a");
    pods.get(key)!.metadata!.annotations![ANNOTATION.instanceType] = "big";
    await reconcileUntilDone(reconciler, key);
    assert.equal(writes.records.get(key)?.status?.phase, "Ready");
    assert.equal((await poolVms()).length, 1);
  });
});
