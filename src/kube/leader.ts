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
  /** Stops campaigning; a leader stops leading and releases the lease so another replica takes over at once. */
  stop(): Promise<void>;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: expiry is judged by when this
 * replica last saw the lease record change (its own clock), never by comparing clocks across machines;
 * writes are guarded by resourceVersion so two candidates cannot both win.
 */
export function startLeaderElection(kc: KubeConfig, options: LeaderElectionOptions): LeaderElection {
  const api = kc.makeApiClient(CoordinationV1Api);
  const identity = options.identity ?? `${hostname()}_${randomBytes(4).toString("hex")}`;
  const leaseDurationMs = options.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = options.retryPeriodMs ?? 2_000;
  const { namespace, name, log } = options;

  let observed: { holder: string; renewTime: string; at: number } | undefined;
  let leading = false;
  let lastRenew = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let transition: Promise<void> = Promise.resolve();

  const spec = (lease: V1Lease | undefined, now: V1MicroTime): V1Lease["spec"] => {
    const previous = lease?.spec;
    const ours = previous?.holderIdentity === identity;
    return {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: ours && previous?.acquireTime ? new V1MicroTime(previous.acquireTime) : now,
      renewTime: now,
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (ours || !previous ? 0 : 1),
    };
  };

  /** One attempt to take or keep the lease; true when this replica holds it afterwards. */
  const tryAcquireOrRenew = async (): Promise<boolean> => {
    const now = new V1MicroTime();
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (apiStatus(error) !== 404) throw error;
      await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: spec(undefined, now) } });
      return true;
    }
    const holder = lease.spec?.holderIdentity ?? "";
    const renewTime = lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : "";
    if (!observed || observed.holder !== holder || observed.renewTime !== renewTime) observed = { holder, renewTime, at: Date.now() };
    const heldByOther = holder !== "" && holder !== identity && observed.at + (lease.spec?.leaseDurationSeconds ?? 15) * 1000 > Date.now();
    if (heldByOther) return false;
    await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: spec(lease, now) } });
    return true;
  };

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
    try {
      held = await tryAcquireOrRenew();
    } catch (error) {
      const status = apiStatus(error);
      if (status !== 409) log.warn({ err: status ? `HTTP ${status}` : error, identity }, "lease request failed");
    }
    if (stopped) return;
    if (held) lastRenew = Date.now();
    if (held) setLeading(true);
    else if (leading && Date.now() - lastRenew > renewDeadlineMs) setLeading(false);
    else if (leading && observed && observed.holder !== identity) setLeading(false);
    const jitter = leading ? 1 : 1 + Math.random() * 0.2;
    timer = setTimeout(() => void tick(), retryPeriodMs * jitter);
  };
  void tick();

  return {
    identity,
    isLeader: () => leading,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      const wasLeading = leading;
      setLeading(false);
      await transition;
      if (!wasLeading) return;
      try {
        const lease = await api.readNamespacedLease({ name, namespace });
        if (lease.spec?.holderIdentity !== identity) return;
        const released = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: new V1MicroTime() };
        await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: released } });
      } catch (error) {
        log.warn({ err: error }, "could not release the lease; another replica takes over when it expires");
      }
    },
  };
}
