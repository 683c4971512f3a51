import assert from "node:assert/strict";
import type { InstanceType, WarmPoolSpec } from "../../policy/schema.js";
import { classify, planPool, type PlanInput, type PoolVm } from "./plan.js";

const NOW = 1_000_000;
const BOOT_TIMEOUT = 60_000;
const catalog = new Map<string, InstanceType>([
  ["small", { name: "small", vcpus: 1, memoryMiB: 512, gpus: 0, hourlyCost: 0.01 }],
  ["large", { name: "large", vcpus: 4, memoryMiB: 2048, gpus: 0, hourlyCost: 0.04 }],
]);
let serial = 0;
const vm = (instanceType: string, overrides: Partial<PoolVm> = {}): PoolVm => ({
  id: `vm-${++serial}`,
  instanceType,
  state: "running",
  ready: true,
  createdAt: NOW - 1000 - serial,
  ...overrides,
});
const booting = (instanceType: string, overrides: Partial<PoolVm> = {}): PoolVm => vm(instanceType, { state: "pending", ready: false, createdAt: NOW - 1000, ...overrides });
const input = (warmPool: WarmPoolSpec | undefined, vms: PoolVm[], overrides: Partial<PlanInput> = {}): PlanInput => ({
  warmPool,
  catalog,
  limits: {},
  vms,
  creating: new Map(),
  podVms: { count: 0, vcpus: 0 },
  now: NOW,
  bootTimeoutMs: BOOT_TIMEOUT,
  ...overrides,
});
const small = (min: number, extra: Partial<WarmPoolSpec["pools"][number]> = {}): WarmPoolSpec => ({ pools: [{ instanceType: "small", min, ...extra }] });
const reasons = (plan: ReturnType<typeof planPool>): string[] => plan.delete.map((d) => `${d.id}:${d.reason}`);

describe("warm pool plan", () => {
  it("classifies ready VMs idle, pending ones booting until the boot timeout, and the rest unhealthy", () => {
    assert.equal(classify(vm("small"), NOW, BOOT_TIMEOUT), "idle");
    assert.equal(classify(booting("small"), NOW, BOOT_TIMEOUT), "booting");
    assert.equal(classify(booting("small", { createdAt: NOW - BOOT_TIMEOUT - 1 }), NOW, BOOT_TIMEOUT), "unhealthy");
    assert.equal(classify(vm("small", { ready: false }), NOW, BOOT_TIMEOUT), "unhealthy", "running without its agent");
    assert.equal(classify(vm("small", { state: "terminated", ready: false }), NOW, BOOT_TIMEOUT), "unhealthy");
  });

  it("fills an empty pool to min", () => {
    assert.deepEqual(planPool(input(small(2), [])).create, ["small", "small"]);
  });

  it("counts booting VMs and creates under way toward min", () => {
    assert.deepEqual(planPool(input(small(3), [vm("small"), booting("small")])).create, ["small"]);
    assert.deepEqual(planPool(input(small(3), [vm("small")], { creating: new Map([["small", 2]]) })).create, []);
  });

  it("does nothing when the pool is at min", () => {
    const plan = planPool(input(small(2), [vm("small"), vm("small")]));
    assert.deepEqual([plan.create, plan.delete], [[], []]);
    assert.deepEqual(plan.counts.find((c) => c.state === "idle"), { instanceType: "small", state: "idle", count: 2 });
  });

  it("replaces an unhealthy VM", () => {
    const sick = vm("small", { ready: false });
    const plan = planPool(input(small(2), [vm("small"), sick]));
    assert.deepEqual(reasons(plan), [`${sick.id}:unhealthy`]);
    assert.deepEqual(plan.create, ["small"]);
    assert.equal(plan.counts.find((c) => c.state === "unhealthy")?.count, 1);
  });

  it("recycles idle VMs older than maxIdleSeconds, but not booting ones", () => {
    const old = vm("small", { createdAt: NOW - 601_000 });
    const plan = planPool(input(small(2, { maxIdleSeconds: 600 }), [old, vm("small")]));
    assert.deepEqual(reasons(plan), [`${old.id}:expired`]);
    assert.deepEqual(plan.create, ["small"]);
  });

  it("shrinking to 0 deletes every idle and booting VM; a policy without a pool deletes them all", () => {
    const vms = [vm("small"), vm("small"), booting("small")];
    assert.equal(planPool(input(small(0), vms)).delete.length, 3);
    assert.deepEqual(planPool(input(undefined, vms)).delete.map((d) => d.reason), ["not pooled", "not pooled", "not pooled"]);
  });

  it("trims idle VMs above min, oldest first", () => {
    const [oldest, middle, newest] = [vm("small", { createdAt: NOW - 9000 }), vm("small", { createdAt: NOW - 5000 }), vm("small", { createdAt: NOW - 2000 })];
    assert.deepEqual(reasons(planPool(input(small(1), [newest!, oldest!, middle!]))), [`${oldest!.id}:surplus`, `${middle!.id}:surplus`]);
  });

  it("keeps idle plus booting within max", () => {
    const plan = planPool(input(small(1, { max: 1 }), [vm("small"), booting("small")]));
    assert.deepEqual(plan.delete.map((d) => d.reason), ["surplus"]);
    assert.equal(plan.counts.find((c) => c.state === "booting")?.count, 0);
  });

  it("caps the summed hourly cost: creates what fits, first pools first", () => {
    const pools: WarmPoolSpec = { pools: [{ instanceType: "small", min: 2 }, { instanceType: "large", min: 2 }], maxIdleCost: 0.07 };
    assert.deepEqual(planPool(input(pools, [])).create, ["small", "large", "small"]);
  });

  it("deletes from the last pool when over the cost cap after a change", () => {
    const pools: WarmPoolSpec = { pools: [{ instanceType: "small", min: 1 }, { instanceType: "large", min: 1 }], maxIdleCost: 0.02 };
    const large = vm("large");
    const plan = planPool(input(pools, [vm("small"), large]));
    assert.deepEqual(reasons(plan), [`${large.id}:over cost cap`]);
    assert.deepEqual(plan.create, []);
    assert.ok(Math.abs(plan.costPerHour - 0.01) < 1e-9);
  });

  it("counts pool VMs against the cluster's VM and vCPU limits, and gives way to pods", () => {
    assert.deepEqual(planPool(input(small(3), [], { limits: { maxVMs: 10 }, podVms: { count: 8, vcpus: 8 } })).create, ["small", "small"]);
    assert.deepEqual(planPool(input(small(3), [], { limits: { maxVCPUs: 9 }, podVms: { count: 1, vcpus: 8 } })).create, ["small"]);
    const idle = [vm("small"), vm("small")];
    assert.deepEqual(planPool(input(small(2), idle, { limits: { maxVMs: 10 }, podVms: { count: 9, vcpus: 9 } })).delete.map((d) => d.reason), ["over quota"]);
  });

  it("never creates for a type missing from the catalog", () => {
    assert.deepEqual(planPool(input({ pools: [{ instanceType: "gone", min: 2 }] }, [])).create, []);
  });
});
