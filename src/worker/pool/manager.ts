import { randomBytes } from "node:crypto";
import type { Logger } from "../../log/logger.js";
import { poolClaims, poolIdleCost, poolOperations, poolVms } from "../../metrics/pool.js";
import type { CompiledPolicy } from "../../policy/compiled.js";
import { TokenBucket } from "../../providers/ratelimit.js";
import { ProviderError, TAG, type Instance, type Provider } from "../../providers/types.js";
import { classify, planPool, type DeleteReason } from "./plan.js";

/** The value of the pool tag on a VM no pod has claimed. */
export const POOL_TAG_VALUE = "true";

/** A reservation made by `take` is kept this long at most waiting for the PeerPod that records it to show up. */
const RESERVATION_TTL_MS = 30_000;

export type PoolClaim = { result: "hit"; instance: Instance } | { result: "miss" };

/** What the reconciler asks of the pool. */
export interface PoolClaims {
  /** Whether the policy keeps a pool of this type. */
  serves(instanceType: string): boolean;
  /** An idle VM of a pooled type, reserved for the caller, or a miss. Never waits. */
  take(instanceType: string): PoolClaim;
  /** Deletes one idle pool VM to make room for a pod's VM; false when there is none. */
  evictIdle(): Promise<boolean>;
}

export interface WarmPoolOptions {
  provider: Provider;
  clusterId: string;
  policy: () => CompiledPolicy;
  /** Instance ids the PeerPod records hold: those VMs are pods', whatever their tags still say. */
  claimedIds: () => ReadonlySet<string>;
  intervalMs: number;
  bootTimeoutMs: number;
  /** Refill rate: one token per pool VM booted. */
  refill: TokenBucket;
  maxConcurrentCreates: number;
  log: Logger;
}

/**
 * Keeps the warm pool as the policy wants it: lists the cluster's VMs, plans (see plan.ts), deletes
 * and boots in the background. Claims are served from the last listing without any call, so a pod
 * never waits for the pool; a VM handed out is reserved here until its PeerPod record holds it.
 */
export class WarmPool implements PoolClaims {
  readonly #idle = new Map<string, Instance>();
  readonly #reserved = new Map<string, number>();
  readonly #deleting = new Set<string>();
  /** Pool boots under way: VM name → instance type. */
  readonly #creating = new Map<string, string>();
  readonly #boots = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  /** Unclaimed pool VMs at the last listing; unknown until the first. */
  #poolVmsSeen: number | undefined;

  constructor(private readonly options: WarmPoolOptions) {}

  start(): void {
    this.wake();
  }

  /** Syncs soon (after a claim, a finished boot or a policy change), and then every interval. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#syncing) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#runSync(), 0);
  }

  /** No sync or boot starts any more; resolves once those under way are done (cancelled by the provider's signal, if they are to end soon). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await Promise.all([this.#syncing, ...this.#boots]);
    // A replica that no longer leads keeps no pool: its gauges would go stale.
    poolVms.reset();
    poolIdleCost.set(0);
  }

  serves(instanceType: string): boolean {
    return this.options.policy().spec.warmPool?.pools.some((pool) => pool.instanceType === instanceType && pool.min > 0) ?? false;
  }

  take(instanceType: string): PoolClaim {
    const candidates = [...this.#idle.values()].filter((i) => i.instanceType === instanceType && this.#available(i.id));
    const oldest = candidates.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())[0];
    this.wake();
    if (!oldest) {
      poolClaims.inc({ result: "miss" });
      return { result: "miss" };
    }
    this.#idle.delete(oldest.id);
    this.#reserved.set(oldest.id, Date.now());
    poolClaims.inc({ result: "hit" });
    return { result: "hit", instance: oldest };
  }

  async evictIdle(): Promise<boolean> {
    const victim = [...this.#idle.values()].find((i) => this.#available(i.id));
    if (!victim) return false;
    await this.#delete(victim, "over quota");
    return true;
  }

  /** One round: list, plan, act. Deletes are awaited; boots run in the background. */
  async sync(): Promise<void> {
    const { provider, clusterId } = this.options;
    const policy = this.options.policy();
    // Without a pool in the policy nothing is listed once no pool VM is left.
    if (!policy.spec.warmPool?.pools.length && this.#poolVmsSeen === 0) return;
    // Taken before the listing, and minus the boots the listing already shows: each boot counted once.
    const started = [...this.#creating];
    const listed = await provider.list({ [TAG.cluster]: clusterId });
    const creating = unlisted(started, listed);
    const claimed = this.options.claimedIds();
    const now = Date.now();
    const listedIds = new Set(listed.map((i) => i.id));
    for (const [id, at] of this.#reserved) if (claimed.has(id) || !listedIds.has(id) || now - at > RESERVATION_TTL_MS) this.#reserved.delete(id);
    const isPool = (i: Instance): boolean => i.tags[TAG.pool] !== undefined && !claimed.has(i.id) && !this.#reserved.has(i.id);
    const pool = listed.filter((i) => isPool(i) && !this.#deleting.has(i.id));
    this.#poolVmsSeen = pool.length;
    const podVms = listed.filter((i) => !isPool(i));
    const plan = planPool({
      warmPool: policy.spec.warmPool,
      catalog: policy.instanceTypes,
      limits: policy.spec.limits,
      vms: pool.map((i) => ({ id: i.id, instanceType: i.instanceType, state: i.state, ready: i.ready, createdAt: i.createdAt.getTime() })),
      creating,
      podVms: { count: podVms.length, vcpus: podVms.reduce((sum, i) => sum + (policy.instanceTypes.get(i.instanceType)?.vcpus ?? 0), 0) },
      now,
      bootTimeoutMs: this.options.bootTimeoutMs,
    });
    const doomed = new Set(plan.delete.map((d) => d.id));
    this.#idle.clear();
    for (const i of pool) if (!doomed.has(i.id) && classify({ ...i, createdAt: i.createdAt.getTime() }, now, this.options.bootTimeoutMs) === "idle") this.#idle.set(i.id, i);
    poolVms.reset();
    for (const { instanceType, state, count } of plan.counts) poolVms.set({ instance_type: instanceType, state }, count);
    poolIdleCost.set(plan.costPerHour);
    const byId = new Map(pool.map((i) => [i.id, i]));
    await Promise.all(plan.delete.map(({ id, reason }) => this.#delete(byId.get(id)!, reason)));
    this.#refill(plan.create);
  }

  /** Starts the boots the plan wants, as far as the rate limit allows; the rest wait for a later round. */
  #refill(types: readonly string[]): void {
    for (const type of types) {
      if (this.#stopped || this.#creating.size >= this.options.maxConcurrentCreates || !this.options.refill.tryTake()) {
        this.options.log.debug({ instanceType: type }, "pool refill deferred (rate limit)");
        return;
      }
      const boot: Promise<void> = this.#create(type).finally(() => this.#boots.delete(boot));
      this.#boots.add(boot);
    }
  }

  #available(id: string): boolean {
    return !this.#reserved.has(id) && !this.#deleting.has(id);
  }

  #runSync(): void {
    this.#timer = undefined;
    this.#syncing = this.sync()
      .catch((error: unknown) => {
        if (!this.#stopped) this.options.log.warn({ err: error }, "warm pool sync failed; trying again next interval");
      })
      .finally(() => {
        this.#syncing = undefined;
        if (this.#stopped) return;
        const delay = this.#again ? 0 : this.options.intervalMs;
        this.#again = false;
        this.#timer = setTimeout(() => this.#runSync(), delay);
      });
  }

  async #delete(instance: Instance, reason: DeleteReason): Promise<void> {
    this.#deleting.add(instance.id);
    this.#idle.delete(instance.id);
    try {
      await this.options.provider.delete(instance.id);
      poolOperations.inc({ op: "delete", reason, result: "ok" });
      this.options.log.info({ instanceId: instance.id, instanceType: instance.instanceType, reason, state: instance.state, message: instance.message }, "pool VM deleted");
    } catch (error) {
      if (this.#stopped) return;
      poolOperations.inc({ op: "delete", reason, result: "error" });
      this.options.log.warn({ err: error, instanceId: instance.id, reason }, "could not delete a pool VM; trying again next sync");
    } finally {
      this.#deleting.delete(instance.id);
    }
  }

  async #create(type: string): Promise<void> {
    const { provider, clusterId, log } = this.options;
    const instanceType = this.options.policy().instanceTypes.get(type);
    if (!instanceType) return;
    const name = `pool-${type}-${randomBytes(5).toString("hex")}`.toLowerCase();
    this.#creating.set(name, type);
    try {
      const instance = await provider.create({
        name,
        instanceType,
        userData: JSON.stringify({ cluster: clusterId, pool: true }),
        tags: { [TAG.cluster]: clusterId, [TAG.pool]: POOL_TAG_VALUE, [TAG.instanceType]: type },
      });
      poolOperations.inc({ op: "create", reason: "refill", result: "ok" });
      log.info({ instanceId: instance.id, instanceType: type }, "pool VM booting");
    } catch (error) {
      if (this.#stopped) return;
      const kind = error instanceof ProviderError ? error.kind : "unknown";
      poolOperations.inc({ op: "create", reason: "refill", result: kind === "quota" ? "quota" : "error" });
      log.warn({ err: error, instanceType: type, kind }, "could not boot a pool VM; trying again later");
    } finally {
      this.#creating.delete(name);
      this.wake();
    }
  }
}

/** Boots under way (name → type) that `listed` does not show yet, counted by type. */
function unlisted(creating: Iterable<[string, string]>, listed: readonly Instance[]): Map<string, number> {
  const names = new Set(listed.map((i) => i.name));
  const counts = new Map<string, number>();
  for (const [name, type] of creating) if (!names.has(name)) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** How often the pool lists the cloud when nothing wakes it sooner. */
const SYNC_INTERVAL_MS = 1000;
/** A pool VM not ready this long after its creation is replaced (a cold TCG boot takes seconds, a cloud VM a minute or two). */
const BOOT_TIMEOUT_MS = 5 * 60_000;
/** Pool boots: at most this many at once, and this many per second. */
const MAX_CONCURRENT_CREATES = 2;
const REFILL_PER_SECOND = 1;

/** The worker's warm pool, or undefined when the provider cannot hand a pool VM to a pod. */
export function warmPoolFor(provider: Provider, options: Omit<WarmPoolOptions, "provider" | "intervalMs" | "bootTimeoutMs" | "refill" | "maxConcurrentCreates">): WarmPool | undefined {
  if (!provider.claim) return undefined;
  return new WarmPool({
    provider,
    intervalMs: SYNC_INTERVAL_MS,
    bootTimeoutMs: BOOT_TIMEOUT_MS,
    refill: new TokenBucket(REFILL_PER_SECOND, MAX_CONCURRENT_CREATES),
    maxConcurrentCreates: MAX_CONCURRENT_CREATES,
    ...options,
  });
}

/** The instance ids PeerPod records hold. */
export function heldInstanceIds(records: Iterable<{ status?: { instanceID?: string | null } }>): Set<string> {
  const ids = new Set<string>();
  for (const record of records) if (record.status?.instanceID) ids.add(record.status.instanceID);
  return ids;
}
