import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "../log/logger.js";
import { apiStatus } from "./errors.js";
import { objectKey } from "./keys.js";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity?: string;
  /** How long a lease holds without renewal before others may take it. */
  leaseDurationMs?: number;
  /** The leader steps down when it could not renew for this long. */
  renewDeadlineMs?: number;
  /** How often candidates try, and the leader renews. */
  retryPeriodMs?: number;
  log: Logger;
  onStartedLeading(): Promise<void> | void;
  onStoppedLeading(): Promise<void> | void;
}

export interface LeaderElection {
  readonly identity: string;
  isLeader(): boolean;
  /**
   * Stops leading and releases the lease so another replica takes over at once, and leaves the race
   * to the others for one lease duration before campaigning again (the part this replica could not
   * start may start elsewhere).
   */
  resign(): Promise<void>;
  /** Stops campaigning; a leader stops leading and releases the lease so another replica takes over at once. */
  stop(): Promise<void>;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: expiry is judged by when this
 * replica last saw the lease record change (its own clock), never by comparing clocks across machines;
 * writes are guarded by resourceVersion so two candidates cannot both win.
 */
export function startLeaderElection(kc: KubeConfig, options: LeaderElectionOptions): LeaderElection {
  const identity = options.identity ?? `${hostname()}_${randomBytes(4).toString("hex")}`;
  const leaseDurationMs = options.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = options.retryPeriodMs ?? 2_000;
  const { namespace, name, log } = options;
  const lease = new LeaseClient(kc.makeApiClient(CoordinationV1Api), namespace, name, identity, leaseDurationMs);

  let leading = false;
  let lastRenew = 0;
  let stopped = false;
  /** Resigned: no attempt to take the lease before then. */
  let pausedUntil = 0;
  let timer: NodeJS.Timeout | undefined;
  let request: Promise<boolean> = Promise.resolve(false);
  let transition: Promise<void> = Promise.resolve();

  const setLeading = (value: boolean): void => {
    if (value === leading) return;
    leading = value;
    log.info({ identity, lease: objectKey({ namespace, name }) }, value ? "became leader" : "stopped leading");
    transition = transition.then(async () => {
      try {
        await (value ? options.onStartedLeading() : options.onStoppedLeading());
      } catch (error) {
        log.error({ err: error }, value ? "could not start leading" : "could not stop leading cleanly");
      }
    });
  };

  const tick = async (): Promise<void> => {
    let held = false;
    if (Date.now() >= pausedUntil) {
      request = lease.tryAcquireOrRenew();
      try {
        held = await request;
      } catch (error) {
        const status = apiStatus(error);
        if (status !== 409) log.warn({ err: status ? `HTTP ${status}` : error, identity }, "lease request failed");
      }
    }
    if (stopped) return;
    if (held && Date.now() >= pausedUntil) {
      lastRenew = Date.now();
      setLeading(true);
    } else if (leading && (Date.now() - lastRenew > renewDeadlineMs || lease.heldByAnother())) setLeading(false);
    const jitter = leading ? 1 : 1 + Math.random() * 0.2;
    timer = setTimeout(() => void tick(), retryPeriodMs * jitter);
  };
  void tick();

  /** Stops leading, and releases the lease once no request of this replica can take it back. */
  const stepDown = async (): Promise<void> => {
    const wasLeading = leading;
    setLeading(false);
    await transition;
    await request.catch(() => false);
    if (!wasLeading) return;
    await lease.release().catch((error: unknown) => log.warn({ err: error }, "could not release the lease; another replica takes over when it expires"));
  };

  return {
    identity,
    isLeader: () => leading,
    resign: async () => {
      pausedUntil = Date.now() + leaseDurationMs;
      await stepDown();
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await stepDown();
    },
  };
}

/** One candidate's reads and writes of the Lease, and what it last saw of the holder. */
class LeaseClient {
  #observed: { holder: string; renewTime: string; at: number } | undefined;

  constructor(
    private readonly api: CoordinationV1Api,
    private readonly namespace: string,
    private readonly name: string,
    private readonly identity: string,
    private readonly leaseDurationMs: number,
  ) {}

  /** Whether the last read showed another replica holding the lease. */
  heldByAnother(): boolean {
    return this.#observed !== undefined && this.#observed.holder !== this.identity;
  }

  /** One attempt to take or keep the lease; true when this replica holds it afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name } = this;
    const now = new V1MicroTime();
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (apiStatus(error) !== 404) throw error;
      await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: this.#spec(undefined, now) } });
      return true;
    }
    const holder = lease.spec?.holderIdentity ?? "";
    const renewTime = lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : "";
    const observed = this.#observed;
    if (!observed || observed.holder !== holder || observed.renewTime !== renewTime) this.#observed = { holder, renewTime, at: Date.now() };
    const heldByOther = holder !== "" && holder !== this.identity && this.#observed!.at + (lease.spec?.leaseDurationSeconds ?? 15) * 1000 > Date.now();
    if (heldByOther) return false;
    await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: this.#spec(lease, now) } });
    return true;
  }

  /** Hands the lease back (holder cleared, expiring at once) if this replica still holds it. */
  async release(): Promise<void> {
    const { api, namespace, name } = this;
    const lease = await api.readNamespacedLease({ name, namespace });
    if (lease.spec?.holderIdentity !== this.identity) return;
    const released = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: new V1MicroTime() };
    await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: released } });
  }

  #spec(lease: V1Lease | undefined, now: V1MicroTime): V1Lease["spec"] {
    const previous = lease?.spec;
    const ours = previous?.holderIdentity === this.identity;
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: ours && previous?.acquireTime ? new V1MicroTime(previous.acquireTime) : now,
      renewTime: now,
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (ours || !previous ? 0 : 1),
    };
  }
}
