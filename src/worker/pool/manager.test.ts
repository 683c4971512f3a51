import assert from "node:assert/strict";
import { silentLogger } from "../../log/logger.js";
import { compilePolicy } from "../../policy/compiled.js";
import { parsePolicy, type PolicySpec } from "../../policy/schema.js";
import { cancelledBy } from "../../providers/cancel.js";
import { TokenBucket } from "../../providers/ratelimit.js";
import { createProvider } from "../../providers/sim/index.js";
import { TAG, type Provider } from "../../providers/types.js";
import { WarmPool } from "./manager.js";

const CLUSTER = "c1";

describe("warm pool manager", () => {
  let sim: Provider;
  let pool: WarmPool;
  const start = async (warmPool: object | undefined, sim_: object, claimedIds: ReadonlySet<string> = new Set(), signal = new AbortController().signal): Promise<void> => {
    sim = await createProvider({ readyMs: 0, deleteMs: 0, inventoryFile: null, ...sim_ }, { clusterId: CLUSTER, stateDir: "/nonexistent", log: silentLogger });
    const parsed = parsePolicy({ warmPool });
    assert.ok(parsed.ok);
    const policy = compilePolicy(parsed.spec as PolicySpec, 1);
    pool = new WarmPool({
      provider: cancelledBy(sim, signal),
      clusterId: CLUSTER,
      policy: () => policy,
      claimedIds: () => claimedIds,
      intervalMs: 60_000,
      bootTimeoutMs: 60_000,
      refill: new TokenBucket(1000, 1000),
      maxConcurrentCreates: 4,
      log: silentLogger,
    });
  };
  const vms = (): Promise<string[]> => sim.list({ [TAG.cluster]: CLUSTER }).then((list) => list.map((i) => i.id).sort());
  afterEach(async () => {
    await pool.stop();
    await sim.close();
  });

  it("without a pool in the policy, deletes leftover pool VMs and then stops listing the cloud", async () => {
    await start(undefined, { createMs: 0 });
    await sim.create({ name: "left-over", instanceType: { name: "small", vcpus: 1, memoryMiB: 512, gpus: 0 }, userData: "", tags: { [TAG.cluster]: CLUSTER, [TAG.pool]: "true" } });
    let lists = 0;
    const list = sim.list.bind(sim);
    sim.list = (tags) => {
      lists += 1;
      return list(tags);
    };
    await pool.sync();
    assert.deepEqual(await vms(), []);
    await pool.sync();
    await pool.sync();
    assert.equal(lists, 3, "two listings by the pool (delete, then see none), one by the test");
  });

  it("never trims a VM whose boot is still under way as surplus", async () => {
    // The sim lists a VM as soon as its create starts and answers 150 ms later.
    await start({ pools: [{ instanceType: "small", min: 1 }] }, { createMs: 150 });
    await pool.sync();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const booting = await vms();
    assert.equal(booting.length, 1);
    await pool.sync();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await pool.sync();
    assert.deepEqual(await vms(), booting);
  });

  it("hands each idle VM out once, then misses; serves pooled types only", async () => {
    await start({ pools: [{ instanceType: "small", min: 2 }] }, { createMs: 0 });
    await pool.sync();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await pool.sync();
    const first = pool.take("small");
    const second = pool.take("small");
    assert.equal(first.result, "hit");
    assert.equal(second.result, "hit");
    assert.notEqual(first.result === "hit" && first.instance.id, second.result === "hit" && second.instance.id);
    assert.equal(pool.take("small").result, "miss");
    assert.equal(pool.serves("small"), true);
    assert.equal(pool.serves("large"), false);
  });

  it("stops once the boots under way end, which the worker's stopping cancels", async () => {
    const stopping = new AbortController();
    await start({ pools: [{ instanceType: "small", min: 1 }] }, { createMs: 60_000 }, new Set(), stopping.signal);
    await pool.sync();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await vms()).length, 1, "a boot under way");
    let stopped = false;
    const poolStopped = pool.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(stopped, false, "waits for the boot");
    stopping.abort(new Error("the worker is stopping"));
    await poolStopped;
  });
});
