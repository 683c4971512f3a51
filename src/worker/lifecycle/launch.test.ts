import assert from "node:assert/strict";
import { compilePolicy } from "../../policy/compiled.js";
import { defaultPolicy } from "../../policy/schema.js";
import { ProviderError, type Instance } from "../../providers/types.js";
import { MemoryCluster, recordedPod, stateIn, stepsOver } from "../../test-support/memory-cluster.js";
import { MemoryProvider } from "../../test-support/memory-provider.js";
import type { PoolClaim, PoolClaims } from "../pool/manager.js";
import { VmBudget } from "../vm-budget.js";
import { createInstance, podInstanceSpec, ROOM_RECHECK_MS } from "./launch.js";

describe("lifecycle: launching the pod's VM", () => {
  let cluster: MemoryCluster;
  let cloud: MemoryProvider;

  const pool = (claim: PoolClaim, evictable = false): PoolClaims & { evicted: number } => ({
    evicted: 0,
    serves: () => true,
    take: () => claim,
    async evictIdle() {
      if (!evictable) return false;
      this.evicted++;
      return true;
    },
  });

  beforeEach(() => {
    cluster = new MemoryCluster();
    cloud = new MemoryProvider("unix:/agent");
  });

  it("boots a VM cold: the pod's spec, and the record names it", async () => {
    const steps = stepsOver(cluster, cloud);
    const state = await recordedPod(cluster, steps, "a");
    await createInstance(steps, state, "cloud");
    const [vm] = cloud.instances.values();
    assert.deepEqual(cloud.calls, ["create pp-uid-a"]);
    assert.equal(vm!.tags["peerpods.io/pod-uid"], "uid-a");
    assert.deepEqual(cluster.records.get("ns/a")!.status, { phase: "Creating", instanceID: vm!.id, address: null, agentEndpoint: null, message: null });
    assert.equal(state.found?.id, vm!.id);
  });

  it("hands over an idle pool VM without a create, the claim recorded first", async () => {
    const idle: Instance = { id: "pool-1", name: "pool-small-1", state: "running", ready: true, instanceType: "small", tags: { "peerpods.io/pool": "true" }, createdAt: new Date() };
    const steps = stepsOver(cluster, cloud, { pool: pool({ result: "hit", instance: idle }) });
    const state = await recordedPod(cluster, steps, "a");
    await createInstance(steps, state, "pool");
    assert.deepEqual(cloud.calls, []);
    assert.equal(cluster.records.get("ns/a")!.status?.instanceID, "pool-1");
    assert.equal(cluster.records.get("ns/a")!.status?.warmPool, "hit");
    assert.deepEqual(state.instance, { kind: "present", state: "running", ready: true, pooled: true }, "still the pool's until claimInstance");
  });

  it("boots cold on a pool miss, and says so on the record", async () => {
    const steps = stepsOver(cluster, cloud, { pool: pool({ result: "miss" }) });
    const state = await recordedPod(cluster, steps, "a");
    await createInstance(steps, state, "pool");
    assert.deepEqual(cloud.calls, ["create pp-uid-a"]);
    assert.equal(cluster.records.get("ns/a")!.status?.warmPool, "miss");
  });

  it("waits for room under the limits, with the reason on the record and one Event per wait", async () => {
    const limited = compilePolicy({ ...defaultPolicy(), limits: { maxVMs: 1 } }, 2);
    const budget = new VmBudget(() => [...cluster.records.values()], () => 1);
    const steps = stepsOver(cluster, cloud, { policy: () => limited, budget });
    await createInstance(steps, await recordedPod(cluster, steps, "a"), "cloud");
    const waiting = await recordedPod(cluster, steps, "b");
    await createInstance(steps, waiting, "cloud");
    assert.equal(waiting.requeueAfterMs, ROOM_RECHECK_MS);
    assert.equal(cluster.records.get("ns/b")!.status?.phase, "Pending");
    assert.match(cluster.records.get("ns/b")!.status!.message!, /maxVMs=1 reached/);
    await createInstance(steps, stateIn(cluster, "b"), "cloud");
    assert.deepEqual(cluster.reasons.filter((r) => r === "VMLimitReached"), ["VMLimitReached"]);
    assert.equal(cloud.instances.size, 1);
  });

  it("makes room by evicting an idle pool VM when the cloud is full, and tries once more", async () => {
    const create = cloud.create.bind(cloud);
    let full = true;
    cloud.create = (spec) => {
      if (!full) return create(spec);
      full = false;
      return Promise.reject(new ProviderError("quota", "no room"));
    };
    const claims = pool({ result: "miss" }, true);
    const steps = stepsOver(cluster, cloud, { pool: claims });
    await createInstance(steps, await recordedPod(cluster, steps, "a"), "cloud");
    assert.equal(claims.evicted, 1);
    assert.equal(cloud.instances.size, 1);
  });

  it("records a failed create on the record and the pod, frees its room, and throws for the queue to retry", async () => {
    cloud.failCreate = new ProviderError("quota", "instance limit reached");
    const budget = new VmBudget(() => [...cluster.records.values()], () => 1);
    const limited = compilePolicy({ ...defaultPolicy(), limits: { maxVMs: 5 } }, 2);
    const steps = stepsOver(cluster, cloud, { budget, policy: () => limited });
    await assert.rejects(createInstance(steps, await recordedPod(cluster, steps, "a"), "cloud"), /instance limit reached/);
    assert.equal(cluster.records.get("ns/a")!.status?.phase, "Failed");
    assert.deepEqual(cluster.reasons, ["VMQuotaExceeded"]);
    assert.deepEqual(budget.usage("other"), { vms: 0, vcpus: 0 });
  });

  it("refuses an instance type the policy's catalog no longer has", async () => {
    const steps = stepsOver(cluster, cloud);
    const state = await recordedPod(cluster, steps, "a");
    const record = { ...state.record!, spec: { ...state.record!.spec, instanceType: "gone" } };
    assert.throws(() => podInstanceSpec(state.pod!, record, steps.policy(), "c1"), (error: unknown) => error instanceof ProviderError && error.kind === "invalid");
  });
});
