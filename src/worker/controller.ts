import type { KubeConfig, ObjectCache, V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../kube/annotations.js";
import type { EventRecorder } from "../kube/events.js";
import type { SharedInformer } from "../kube/shared-informer.js";
import type { Logger } from "../log/logger.js";
import { gcDeleted, vmOperations, workerView } from "../metrics/worker.js";
import type { PolicyStore } from "../policy/store.js";
import type { ProviderHealthMonitor } from "../providers/health.js";
import { TAG, type Instance, type Provider } from "../providers/types.js";
import { podFacts } from "./decide.js";
import { findLeaks, recordsToRevisit, type LivePods } from "./gc.js";
import { heldInstanceIds, warmPoolFor } from "./pool/manager.js";
import type { PeerPod } from "../kube/peerpod.js";
import { watchPeerPods } from "../kube/peerpod-records.js";
import { WorkQueue } from "../kube/work-queue.js";
import { ReadyWatcher } from "./ready-watch.js";
import { Reconciler } from "./reconcile.js";
import { clusterWrites } from "./cluster-writes.js";
import { VmBudget } from "./vm-budget.js";

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
  stop(graceMs: number): Promise<void>;
}

/**
 * The worker's control loop: the shared pod cache and an informer on PeerPods feed a keyed queue; each
 * key is reconciled by `Reconciler`; a periodic garbage collection removes VMs no live pod owns. Nothing
 * is acted upon before both have delivered their first list, so a cold cache never looks like deleted pods.
 */
export function startController(options: ControllerOptions): Controller {
  const { kc, provider, policy, clusterId, log } = options;
  const queue = new WorkQueue((key) => reconciler.reconcile(key), {
    concurrency: options.concurrency,
    baseBackoffMs: 500,
    maxBackoffMs: 5 * 60_000,
    jitter: 0.2,
    onError: (key, error, failures, retryInMs) => log.warn({ pod: key, err: error, failures, retryInMs }, "reconcile failed; retrying"),
  });
  const enqueue = (key: string): void => queue.add(key);

  /** When this replica saw each pod go from unbound to bound; pods bound before it saw them use PodScheduled. */
  const boundSeen = new Map<string, number>();
  const seenUnbound = new Set<string>();
  const podSignatures = new Map<string, string>();
  const onPod = (pod: V1Pod, deleted = false): void => {
    if (!pod.spec?.runtimeClassName) return;
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if (deleted) {
      podSignatures.delete(key);
      boundSeen.delete(key);
      seenUnbound.delete(key);
      return enqueue(key);
    }
    if (!pod.spec.nodeName) seenUnbound.add(key);
    else if (seenUnbound.delete(key)) boundSeen.set(key, Date.now());
    const signature = podSignature(pod);
    if (podSignatures.get(key) === signature) return;
    podSignatures.set(key, signature);
    enqueue(key);
  };
  const { pods } = options;
  // Subscribing replays every cached pod as an add, so a new leader term starts from all of them.
  const unsubscribePods = pods.subscribe({ add: (pod) => onPod(pod), update: (pod) => onPod(pod), delete: (pod) => onPod(pod, true) });

  const budget = new VmBudget(
    () => recordCache.list(),
    (instanceType) => policy.current.instanceTypes.get(instanceType)?.vcpus ?? 0,
  );
  /** A VM went or the limits changed: pods waiting for room try again (the queue drops duplicates). */
  function wakeWaitingForRoom(): void {
    for (const key of budget.waiting()) enqueue(key);
  }
  const recordSignatures = new Map<string, string>();
  const onRecord = (record: PeerPod, deleted = false): void => {
    const key = `${record.metadata.namespace}/${record.metadata.name}`;
    const signature = deleted ? undefined : `${record.metadata.uid}|${record.metadata.deletionTimestamp ?? ""}|${record.metadata.generation ?? ""}`;
    if (signature === recordSignatures.get(key)) return;
    if (signature === undefined) recordSignatures.delete(key);
    else recordSignatures.set(key, signature);
    enqueue(key);
    if (deleted) {
      budget.release(key);
      wakeWaitingForRoom();
    }
  };
  const records = watchPeerPods(kc, log, onRecord);
  const recordCache = records.cache;
  const pool = warmPoolFor(provider, { clusterId, policy: () => policy.current, claimedIds: () => heldInstanceIds(recordCache.list()), log: log.child({ component: "warm-pool" }) });
  const onPolicyChange = (): void => {
    pool?.wake();
    wakeWaitingForRoom();
  };
  const onHealth = (healthy: boolean): void => {
    if (!healthy) return;
    log.info({ backingOff: queue.delayed }, "provider healthy again: retrying every pod now");
    queue.retryDelayedNow();
    runGc();
  };
  const listed = new Map<string, Instance | undefined>();
  /** Keys whose VM the last GC listing did not show. */
  const verify = new Set<string>();
  const ready = new ReadyWatcher(provider, clusterId, options.readyPollMs, (key, instance) => {
    listed.set(key, instance);
    queue.add(key, true);
  }, log);
  const reconciler = new Reconciler({
    clusterId,
    provider,
    writes: clusterWrites(kc),
    events: options.events,
    policy: () => policy.current,
    pod: (key) => getByKey(pods, key),
    record: (key) => getByKey(recordCache, key),
    boundAt: (key, pod) => boundSeen.get(key) ?? scheduledAt(pod) ?? Date.now(),
    waitForReady: (key, id) => ready.wait(key, id),
    ...(pool ? { pool } : {}),
    budget,
    mustVerify: (key) => verify.delete(key),
    takeListedInstance: (key) => {
      const instance = listed.get(key);
      listed.delete(key);
      return instance;
    },
    log,
  });
  workerView.queueDepth = () => queue.depth;
  workerView.vmCounts = () => countByPhase(recordCache.list());

  const livePods = (): LivePods => {
    const current = policy.current;
    const live = pods.list().filter((pod) => !podFacts(pod, current).done);
    return { uids: new Set(live.map((pod) => pod.metadata!.uid!)), names: new Set(live.map((pod) => `${pod.metadata!.namespace}/${pod.metadata!.name}`)) };
  };
  let gcRunning: Promise<void> | undefined;
  const collectGarbage = async (): Promise<void> => {
    try {
      const instances = await provider.list({ [TAG.cluster]: clusterId });
      const live = livePods();
      for (const record of recordsToRevisit(recordCache.list(), live.uids, new Set(instances.map((i) => i.id)))) {
        const key = `${record.metadata.namespace}/${record.metadata.name}`;
        verify.add(key);
        enqueue(key);
      }
      for (const leak of findLeaks(instances, live, Date.now(), options.gcGraceMs)) {
        await provider.delete(leak.id);
        gcDeleted.inc();
        vmOperations.inc({ op: "gc", result: "ok" });
        const owner = `${leak.tags[TAG.namespace] ?? "?"}/${leak.tags[TAG.podName] ?? "?"}`;
        log.warn({ instanceId: leak.id, podUid: leak.tags[TAG.podUid], pod: owner, createdAt: leak.createdAt }, "leaked VM deleted: no live pod owns it");
      }
    } catch (error) {
      vmOperations.inc({ op: "gc", result: "error" });
      log.warn({ err: error }, "garbage collection failed; trying again next interval");
    }
  };
  const runGc = (): void => {
    gcRunning ??= collectGarbage().finally(() => (gcRunning = undefined));
  };
  let gcTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  const synced = Promise.all([pods.synced, records.synced]).then(() => {
    if (stopped) return;
    runGc();
    gcTimer = setInterval(runGc, options.gcIntervalMs);
    pool?.start();
    policy.on("change", onPolicyChange);
    options.health.on("change", onHealth);
    queue.start();
    log.info({ pods: podSignatures.size, records: recordSignatures.size, concurrency: options.concurrency }, "worker started");
  });

  return {
    synced,
    stop: async (graceMs) => {
      stopped = true;
      clearInterval(gcTimer);
      ready.stop();
      policy.off("change", onPolicyChange);
      options.health.off("change", onHealth);
      await pool?.stop();
      await queue.stop(graceMs);
      await gcRunning;
      workerView.queueDepth = undefined;
      workerView.vmCounts = undefined;
      unsubscribePods();
      await records.stop();
    },
  };
}

/** The fields whose change may call for an action; other pod updates (status churn) are not queued. */
function podSignature(pod: V1Pod): string {
  const vmReady = pod.status?.conditions?.find((c) => c.type === VM_READY_CONDITION)?.status ?? "";
  return [pod.metadata?.uid, pod.spec?.nodeName ?? "", pod.metadata?.deletionTimestamp ? "deleting" : "", pod.status?.phase ?? "", vmReady, pod.spec?.runtimeClassName].join("|");
}

function getByKey<T>(cache: Pick<ObjectCache<T>, "get">, key: string): T | undefined {
  const slash = key.indexOf("/");
  return cache.get(key.slice(slash + 1), key.slice(0, slash));
}

function scheduledAt(pod: V1Pod): number | undefined {
  const time = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "True")?.lastTransitionTime;
  return time ? new Date(time).getTime() : undefined;
}

function countByPhase(records: readonly PeerPod[]): [string, string, number][] {
  const counts = new Map<string, number>();
  for (const record of records) {
    const key = `${record.status?.phase ?? "Pending"}\u0000${record.spec.instanceType}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => {
    const [phase, type] = key.split("\u0000") as [string, string];
    return [phase, type, count];
  });
}
