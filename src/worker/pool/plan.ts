import type { InstanceType, PolicySpec, WarmPoolSpec } from "../../policy/schema.js";
import type { InstanceState } from "../../providers/types.js";

/** A warm-pool VM as the planner sees it: not claimed by any pod (claimed ones are not the pool's to manage). */
export interface PoolVm {
  id: string;
  instanceType: string;
  state: InstanceState;
  ready: boolean;
  createdAt: number;
}

export type PoolVmState = "idle" | "booting" | "unhealthy";

export type DeleteReason = "unhealthy" | "not pooled" | "expired" | "surplus" | "over cost cap" | "over quota";

export interface PoolPlan {
  /** Instance types to boot, one entry per VM, in the order they should start. */
  create: string[];
  delete: { id: string; instanceType: string; reason: DeleteReason }[];
  /** What the pool holds after the deletions (creations not counted). */
  counts: { instanceType: string; state: PoolVmState; count: number }[];
  /** Summed hourly cost of the pool VMs kept. */
  costPerHour: number;
}

export interface PlanInput {
  warmPool: WarmPoolSpec | undefined;
  catalog: ReadonlyMap<string, InstanceType>;
  limits: PolicySpec["limits"];
  vms: readonly PoolVm[];
  /** Pool creates already under way (not listed by the provider yet), by instance type. */
  creating: ReadonlyMap<string, number>;
  /** VMs of this cluster that serve pods (claimed pool VMs included): they count against the limits too. */
  podVms: { count: number; vcpus: number };
  now: number;
  /** A pool VM not ready this long after its creation is unhealthy. */
  bootTimeoutMs: number;
}

/** Whether a pool VM can be handed to a pod, is still booting, or must go. */
export function classify(vm: PoolVm, now: number, bootTimeoutMs: number): PoolVmState {
  if (vm.state === "terminated" || vm.state === "stopping") return "unhealthy";
  if (vm.ready) return "idle";
  // A running VM that is not ready has lost its agent; a pending one may still be booting.
  if (vm.state === "running" || now - vm.createdAt > bootTimeoutMs) return "unhealthy";
  return "booting";
}

interface Kept {
  vm: PoolVm;
  state: "idle" | "booting";
}

/**
 * What the pool should do now, from the policy and what the provider lists. Pure; the caller deletes
 * and creates. Unhealthy, unpooled and expired VMs go first; then each type is trimmed to its `min`
 * idle and `max` total; then the cost cap and the quota trim further, latest-listed pools first;
 * what is left short of `min` is created, first pools first, within the same caps.
 */
export function planPool(input: PlanInput): PoolPlan {
  const pools = input.warmPool?.pools ?? [];
  const plan: PoolPlan = { create: [], delete: [], counts: [], costPerHour: 0 };
  const drop = (vm: PoolVm, reason: DeleteReason): void => void plan.delete.push({ id: vm.id, instanceType: vm.instanceType, reason });
  const kept = sortOut(input, pools, drop);
  for (const pool of pools) trimPool(pool, kept.get(pool.instanceType)!, input.creating.get(pool.instanceType) ?? 0, drop);
  const caps = new Caps(input, kept);
  // Trim from the last pool backwards, booting and newest first, until within the caps.
  for (const pool of [...pools].reverse()) {
    const list = kept.get(pool.instanceType)!;
    for (const k of [...list].sort(newestBootingFirst)) {
      const reason = caps.exceeded();
      if (!reason) break;
      remove(list, k);
      drop(k.vm, reason);
    }
  }
  plan.create = refill(input, pools, kept, caps);
  for (const [type, list] of kept) {
    for (const state of ["idle", "booting"] as const) {
      plan.counts.push({ instanceType: type, state, count: list.filter((k) => k.state === state).length });
    }
    const unhealthy = plan.delete.filter((d) => d.reason === "unhealthy" && d.instanceType === type).length;
    plan.counts.push({ instanceType: type, state: "unhealthy", count: unhealthy });
  }
  plan.costPerHour = [...kept.values()].flat().reduce((sum, k) => sum + caps.costOf(k.vm.instanceType), 0);
  return plan;
}

type Pool = WarmPoolSpec["pools"][number];

/** Drops unhealthy, unpooled and expired VMs; returns the rest by type, oldest first. */
function sortOut(input: PlanInput, pools: readonly Pool[], drop: (vm: PoolVm, reason: DeleteReason) => void): Map<string, Kept[]> {
  const byType = new Map(pools.map((pool) => [pool.instanceType, pool]));
  const kept = new Map<string, Kept[]>(pools.map((pool) => [pool.instanceType, []]));
  for (const vm of [...input.vms].sort((a, b) => a.createdAt - b.createdAt)) {
    const state = classify(vm, input.now, input.bootTimeoutMs);
    const pool = byType.get(vm.instanceType);
    if (state === "unhealthy") drop(vm, "unhealthy");
    else if (!pool || !input.catalog.has(vm.instanceType)) drop(vm, "not pooled");
    else if (state === "idle" && pool.maxIdleSeconds !== undefined && input.now - vm.createdAt > pool.maxIdleSeconds * 1000) drop(vm, "expired");
    else kept.get(vm.instanceType)!.push({ vm, state });
  }
  return kept;
}

/** Idle VMs above `min` go (oldest first: they would expire first); then the newest until within `max`. */
function trimPool(pool: Pool, list: Kept[], creating: number, drop: (vm: PoolVm, reason: DeleteReason) => void): void {
  const idle = list.filter((k) => k.state === "idle");
  for (const k of idle.slice(0, Math.max(0, idle.length - pool.min))) {
    remove(list, k);
    drop(k.vm, "surplus");
  }
  for (const k of [...list].sort(newestBootingFirst)) {
    if (list.length + creating <= (pool.max ?? pool.min)) break;
    remove(list, k);
    drop(k.vm, "surplus");
  }
}

/** The cluster-wide caps over the kept pool VMs, the creates under way and the pods' VMs. */
class Caps {
  readonly #inFlight: string[];

  constructor(
    private readonly input: PlanInput,
    private readonly kept: ReadonlyMap<string, Kept[]>,
  ) {
    this.#inFlight = [...input.creating].flatMap(([type, n]) => Array<string>(n).fill(type));
  }

  costOf(type: string): number {
    return this.input.catalog.get(type)?.hourlyCost ?? 0;
  }

  /** Counts a planned create from now on. */
  add(type: string): void {
    this.#inFlight.push(type);
  }

  /** Which cap the pool breaks, with `extra` one more VM of that type. */
  exceeded(extra?: string): DeleteReason | undefined {
    const types = [...[...this.kept.values()].flat().map((k) => k.vm.instanceType), ...this.#inFlight, ...(extra ? [extra] : [])];
    const { maxVMs, maxVCPUs } = this.input.limits;
    const maxCost = this.input.warmPool?.maxIdleCost;
    if (maxCost !== undefined && types.reduce((sum, type) => sum + this.costOf(type), 0) > maxCost + 1e-9) return "over cost cap";
    const vcpus = this.input.podVms.vcpus + types.reduce((sum, type) => sum + (this.input.catalog.get(type)?.vcpus ?? 0), 0);
    if ((maxVMs !== undefined && this.input.podVms.count + types.length > maxVMs) || (maxVCPUs !== undefined && vcpus > maxVCPUs)) return "over quota";
    return undefined;
  }
}

/** Creates short of `min` (within `max`), round-robin over the pools in policy order while the caps allow. */
function refill(input: PlanInput, pools: readonly Pool[], kept: ReadonlyMap<string, Kept[]>, caps: Caps): string[] {
  const need = new Map(
    pools.map((pool) => {
      const have = kept.get(pool.instanceType)!.length + (input.creating.get(pool.instanceType) ?? 0);
      const wanted = Math.min(pool.min, pool.max ?? pool.min) - have;
      return [pool.instanceType, input.catalog.has(pool.instanceType) ? Math.max(0, wanted) : 0];
    }),
  );
  const create: string[] = [];
  for (let progressed = true; progressed; ) {
    progressed = false;
    for (const { instanceType: type } of pools) {
      if (need.get(type) === 0 || caps.exceeded(type)) continue;
      create.push(type);
      caps.add(type);
      need.set(type, need.get(type)! - 1);
      progressed = true;
    }
  }
  return create;
}

function remove<T>(list: T[], item: T): void {
  list.splice(list.indexOf(item), 1);
}

function newestBootingFirst(a: Kept, b: Kept): number {
  if (a.state !== b.state) return a.state === "booting" ? -1 : 1;
  return b.vm.createdAt - a.vm.createdAt;
}
