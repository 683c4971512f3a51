import type { V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../kube/annotations.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import type { InstanceState } from "../providers/types.js";
import { REFUSED_CONDITION, VM_FINALIZER, type PeerPod, type PeerPodPhase } from "../kube/peerpod.js";

/** What the worker needs to know about a pod. */
export interface PodFacts {
  uid: string;
  /** Its runtime class is one of the policy's peer runtime classes, in a namespace the policy serves. */
  peer: boolean;
  bound: boolean;
  /** Succeeded, Failed, or Terminating past its kubelet's deadline: its VM should go. */
  done: boolean;
  /** Terminating within its grace period: how long until its VM may go, while the kubelet stops its containers in it. */
  stoppingForMs?: number;
  vmReady: boolean;
}

/** What the worker needs to know about a PeerPod record. */
export interface RecordFacts {
  podUID: string;
  phase: PeerPodPhase | undefined;
  instanceID: string | undefined;
  deleting: boolean;
  finalized: boolean;
  /** The provider refused the pod's VM for good: nothing more is tried until the pod goes. */
  refused: boolean;
  /** The policy keeps a warm pool of the record's instance type (and the provider can hand its VMs over). */
  pooled: boolean;
  /** Read from the apiserver (or returned by a write) during this reconcile, not the informer's copy, which may lag. */
  fresh: boolean;
  /** This replica already marked the record's VM ready, so a record that does not say Ready may be a lagging copy. */
  markedReadyHere: boolean;
}

/** What the record alone does not say: the worker's knowledge around it. */
export type RecordContext = Pick<RecordFacts, "pooled" | "fresh" | "markedReadyHere">;

/** What the provider said about the record's instance; `unknown` until asked. */
export type InstanceFacts =
  /** `verify`: a listing of the cloud missed the VM, so a Ready record must not be taken on trust. */
  | { kind: "unknown"; verify?: boolean }
  | { kind: "absent" }
  /** `pooled`: still tagged as a warm-pool VM, so the pod's claim on it is recorded but not carried out yet. */
  | { kind: "present"; state: InstanceState; ready: boolean; pooled?: boolean };

export type Action =
  | { kind: "none"; reason: string }
  /** Write the PeerPod record (before any VM exists). */
  | { kind: "createRecord" }
  /**
   * Read the record from the apiserver before a step that must not be done twice on a lagging copy
   * (a pool claim, a replacement, a second VMReady).
   */
  | { kind: "refreshRecord" }
  /** Ask for the VM (idempotent on the record's instance name): an idle pool VM first for a pooled type, else a cold boot. */
  | { kind: "createInstance"; from: "pool" | "cloud" }
  | { kind: "lookUpInstance" }
  /** The record holds a warm-pool VM: hand it to the pod (its data, then its tags). */
  | { kind: "claimInstance" }
  /** The VM exists but is not ready yet: look again later. */
  | { kind: "waitReady" }
  /** Pod condition True; with `patchRecord`, the record Ready too and an Event (else only the pod's condition was lost). */
  | { kind: "markReady"; patchRecord: boolean }
  /** The VM is gone or dying behind peerpods' back while the pod lives: replace it, deleting what is left of it (`deleteLost`). */
  | { kind: "replaceInstance"; deleteLost: boolean }
  /** The pod is gone or done: delete every VM tagged with its UID, then release and delete the record. */
  | { kind: "teardown" }
  /** The pod is terminating: its containers get their grace period in the VM before the VM goes; look again then. */
  | { kind: "waitStopped"; afterMs: number };

/**
 * The one decision of the reconcile loop, from the current state of the pod, its record and its VM.
 * Level-based: the same facts always give the same action, so a crash at any point is repaired by
 * deciding again.
 */
export function decide(pod: PodFacts | undefined, record: RecordFacts | undefined, instance: InstanceFacts): Action {
  if (!record) return withoutRecord(pod);
  const podLives = pod !== undefined && pod.uid === record.podUID && !pod.done;
  if (!podLives || record.deleting) {
    if (record.deleting && record.finalized) return { kind: "none", reason: "record released, waiting for its removal" };
    return { kind: "teardown" };
  }
  if (pod.stoppingForMs !== undefined) return { kind: "waitStopped", afterMs: pod.stoppingForMs };
  return forLivePod(pod, record, instance);
}

function withoutRecord(pod: PodFacts | undefined): Action {
  if (!pod) return { kind: "none", reason: "no pod and no record" };
  if (!pod.peer) return { kind: "none", reason: "not a peer pod" };
  if (pod.done) return { kind: "none", reason: "pod is done and has no record" };
  if (!pod.bound) return { kind: "none", reason: "pod not bound to a node yet" };
  return { kind: "createRecord" };
}

const REFRESH: Action = { kind: "refreshRecord" };

function forLivePod(pod: PodFacts, record: RecordFacts, instance: InstanceFacts): Action {
  if (record.refused) return { kind: "none", reason: "the provider refused the pod's VM" };
  if (!record.instanceID) {
    // A second claim from the pool would give the pod two VMs; a cold create is idempotent and needs no check.
    if (record.pooled) return record.fresh ? { kind: "createInstance", from: "pool" } : REFRESH;
    return { kind: "createInstance", from: "cloud" };
  }
  if (instance.kind === "unknown") {
    // A served pod's VM is not asked after on every pod update: the periodic GC listing checks it.
    if (record.phase === "Ready" && pod.vmReady && !instance.verify) return { kind: "none", reason: "VM ready and pod told" };
    return { kind: "lookUpInstance" };
  }
  if (instance.kind === "absent" || instance.state === "stopping" || instance.state === "terminated") return replace(record, instance.kind === "present");
  // A pool VM is taken only when ready; one that is not any more has lost its agent.
  if (instance.pooled) return instance.ready ? { kind: "claimInstance" } : replace(record, true);
  if (!instance.ready) return { kind: "waitReady" };
  return forReadyVm(pod, record);
}

function forReadyVm(pod: PodFacts, record: RecordFacts): Action {
  // Marked ready here, yet the record does not say so: the informer's copy lags behind that patch.
  if (record.phase !== "Ready") return record.markedReadyHere && !record.fresh ? REFRESH : { kind: "markReady", patchRecord: true };
  if (!pod.vmReady) return { kind: "markReady", patchRecord: false };
  return { kind: "none", reason: "VM ready and pod told" };
}

/** A replacement renames the pod's VM: only on the record as the apiserver has it. */
function replace(record: RecordFacts, deleteLost: boolean): Action {
  return record.fresh ? { kind: "replaceInstance", deleteLost } : REFRESH;
}

/**
 * After a terminating pod's deletionTimestamp (the moment its kubelet sends SIGKILL), this long is left
 * for the kubelet to stop the containers in the VM before the VM goes.
 */
export const KILL_SLACK_MS = 5_000;

export function podFacts(pod: V1Pod, policy: CompiledPolicy, now = Date.now()): PodFacts {
  const meta = pod.metadata ?? {};
  const phase = pod.status?.phase;
  const stopping = terminationLeft(pod, now);
  return {
    uid: meta.uid ?? "",
    peer: policy.isPeerPod(pod.spec?.runtimeClassName, meta.namespace ?? ""),
    bound: Boolean(pod.spec?.nodeName),
    done: phase === "Succeeded" || phase === "Failed" || stopping === 0,
    ...(stopping && phase !== "Succeeded" && phase !== "Failed" ? { stoppingForMs: stopping } : {}),
    vmReady: (pod.status?.conditions ?? []).some((c) => c.type === VM_READY_CONDITION && c.status === "True"),
  };
}

/** A terminating pod's time left until its VM may go (0 once past); undefined for a pod not terminating. */
function terminationLeft(pod: V1Pod, now: number): number | undefined {
  const deletion = pod.metadata?.deletionTimestamp;
  return deletion === undefined ? undefined : Math.max(0, new Date(deletion).getTime() + KILL_SLACK_MS - now);
}

export function recordFacts(record: PeerPod, context: RecordContext): RecordFacts {
  return {
    ...context,
    podUID: record.spec.podUID,
    phase: record.status?.phase,
    instanceID: record.status?.instanceID ?? undefined,
    deleting: Boolean(record.metadata.deletionTimestamp),
    finalized: !(record.metadata.finalizers ?? []).includes(VM_FINALIZER),
    refused: (record.status?.conditions ?? []).some((c) => c.type === REFUSED_CONDITION && c.status === "True"),
  };
}
