import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import type { EventRecorder } from "../kube/events.js";
import type { PeerPod } from "../kube/peerpod.js";
import { watchPeerPods } from "../kube/peerpod-records.js";
import type { SharedInformer } from "../kube/shared-informer.js";
import { WorkQueue, type HandlerResult } from "../kube/work-queue.js";
import type { Logger } from "../log/logger.js";
import type { PolicyStore } from "../policy/store.js";
import type { ProviderHealthMonitor } from "../providers/health.js";
import { cancelledBy } from "../providers/cancel.js";
import type { Provider } from "../providers/types.js";
import { clusterWrites } from "./cluster-writes.js";
import { GarbageCollector } from "./garbage-collector.js";
import { splitKey } from "./lifecycle/step.js";
import { PodChanges } from "./pod-changes.js";
import { heldInstanceIds, warmPoolFor, type WarmPool } from "./pool/manager.js";
import { ReadyWatcher } from "./ready-watch.js";
import { Reconciler, type KeyedView } from "./reconcile.js";
import { RecordChanges } from "./record-changes.js";
import { publishWorkerView } from "./status-view.js";
import { VmBudget } from "./vm-budget.js";

/** How long reconciles cancelled at the end of the grace period get to unwind (their cloud calls end at once). */
const CANCELLED_SETTLE_MS = 5000;

export interface ControllerOptions {
  kc: KubeConfig;
  /** The process's pod cache; the controller subscribes while it runs. */
  pods: SharedInformer<V1Pod>;
  provider: Provider;
  /** When the cloud comes back, pods backing off after failed calls are retried at once. */
  health: ProviderHealthMonitor;
  policy: PolicyStore;
  events: EventRecorder;
  clusterId: string;
  concurrency: number;
  gcIntervalMs: number;
  gcGraceMs: number;
  readyPollMs: number;
  log: Logger;
}

export interface Controller {
  /** Resolves once both caches have their first list and the queue runs. */
  synced: Promise<void>;
  /** Takes no new work, gives the reconciles under way `graceMs`, then cancels every cloud call still in flight. */
  stop(graceMs: number): Promise<void>;
}

/**
 * The worker's control loop, wired from its units: pod and PeerPod events (filtered by PodChanges
 * and RecordChanges) feed a keyed queue; each key is reconciled by `Reconciler`; the garbage
 * collector, the ready watcher and the warm pool run beside it. Nothing is acted upon before both
 * caches have delivered their first list, so a cold cache never looks like deleted pods.
 */
export function startController(options: ControllerOptions): Controller {
  const { kc, policy, clusterId, log, pods } = options;
  const stopping = new AbortController();
  // Every cloud call of the worker's units ends when the worker stops or loses its Lease.
  const provider = cancelledBy(options.provider, stopping.signal);
  const queue = reconcileQueue((key) => reconciler.reconcile(key), options.concurrency, log, stopping.signal);
  const enqueue = (key: string | undefined): void => {
    if (key !== undefined) queue.add(key);
  };
  const podChanges = new PodChanges();
  const unsubscribePods = queuePodChanges(pods, podChanges, enqueue);
  const recordChanges = new RecordChanges();
  const records = watchPeerPods(kc, log, (record, deleted) => {
    const key = recordChanges.changed(record, deleted);
    enqueue(key);
    if (!deleted || key === undefined) return;
    budget.release(key);
    wakeWaitingForRoom();
  });
  const recordList = (): readonly PeerPod[] => records.cache.list();
  const budget = new VmBudget(recordList, (instanceType) => policy.current.instanceTypes.get(instanceType)?.vcpus ?? 0);
  /** A VM went or the limits changed: pods waiting for room try again (the queue drops duplicates). */
  const wakeWaitingForRoom = (): void => budget.waiting().forEach(enqueue);
  const pool = warmPoolFor(provider, { clusterId, policy: () => policy.current, claimedIds: () => heldInstanceIds(recordList()), log: log.child({ component: "warm-pool" }) });
  const gc = new GarbageCollector({ provider, clusterId, log, records: recordList, revisit: enqueue, policy: () => policy.current, pods: () => pods.list(), graceMs: options.gcGraceMs, intervalMs: options.gcIntervalMs });
  const ready = new ReadyWatcher(provider, clusterId, options.readyPollMs, (key) => queue.add(key, true), log);
  const reconciler = new Reconciler({
    clusterId,
    provider,
    writes: clusterWrites(kc),
    events: options.events,
    policy: () => policy.current,
    pods: byKey(pods),
    records: byKey(records.cache),
    bindTimes: podChanges,
    ready,
    revisits: gc,
    ...(pool ? { pool } : {}),
    budget,
    signal: stopping.signal,
    log,
  });
  const unpublish = publishWorkerView(queue, recordList);
  let stopListening = (): void => undefined;
  let stopped = false;
  const synced = Promise.all([pods.synced, records.synced]).then(() => {
    if (stopped) return;
    gc.start();
    pool?.start();
    stopListening = wakeUps(options, { queue, gc, pool, wakeWaitingForRoom });
    queue.start();
    log.info({ pods: podChanges.size, records: recordChanges.size, concurrency: options.concurrency }, "worker started");
  });

  return {
    synced,
    stop: async (graceMs) => {
      stopped = true;
      stopListening();
      ready.stop();
      const unitsStopped = Promise.all([gc.stop(), pool?.stop()]);
      // The reconciles under way get the grace period; then whatever is still in flight is cancelled.
      await queue.stop(graceMs);
      stopping.abort(new Error("the worker is stopping"));
      await Promise.all([queue.stop(CANCELLED_SETTLE_MS), unitsStopped]);
      unpublish();
      unsubscribePods();
      await records.stop();
    },
  };
}

/** Queues the pods whose change may call for an action. Subscribing replays every cached pod as an add, so a new leader term starts from all of them. */
function queuePodChanges(pods: SharedInformer<V1Pod>, changes: PodChanges, enqueue: (key: string | undefined) => void): () => void {
  return pods.subscribe({
    add: (pod) => enqueue(changes.changed(pod, false)),
    update: (pod) => enqueue(changes.changed(pod, false)),
    delete: (pod) => enqueue(changes.changed(pod, true)),
  });
}

function reconcileQueue(reconcile: (key: string) => Promise<HandlerResult>, concurrency: number, log: Logger, stopping: AbortSignal): WorkQueue {
  return new WorkQueue(reconcile, {
    concurrency,
    baseBackoffMs: 500,
    maxBackoffMs: 5 * 60_000,
    jitter: 0.2,
    onError: (key, error, failures, retryInMs) => {
      if (stopping.aborted) log.debug({ pod: key, err: error }, "reconcile cancelled: the worker is stopping");
      else log.warn({ pod: key, err: error, failures, retryInMs }, "reconcile failed; retrying");
    },
  });
}

/**
 * What a policy change or the provider's return wakes: the warm pool and the pods waiting for room
 * under the limits; pods backing off after failed calls and a garbage collection. Returns what stops listening.
 */
function wakeUps(
  { policy, health, log }: Pick<ControllerOptions, "policy" | "health" | "log">,
  units: { queue: WorkQueue; gc: GarbageCollector; pool: WarmPool | undefined; wakeWaitingForRoom: () => void },
): () => void {
  const onPolicyChange = (): void => {
    units.pool?.wake();
    units.wakeWaitingForRoom();
  };
  const onHealth = (healthy: boolean): void => {
    if (!healthy) return;
    log.info({ backingOff: units.queue.delayed }, "provider healthy again: retrying every pod now");
    units.queue.retryDelayedNow();
    units.gc.run();
  };
  policy.on("change", onPolicyChange);
  health.on("change", onHealth);
  return () => {
    policy.off("change", onPolicyChange);
    health.off("change", onHealth);
  };
}

/** An informer cache read by `namespace/name` key. */
function byKey<T>(cache: { get(name: string, namespace?: string): T | undefined }): KeyedView<T> {
  return {
    get: (key) => {
      const [namespace, name] = splitKey(key);
      return cache.get(name, namespace);
    },
  };
}
