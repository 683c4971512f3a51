import type { V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../kube/annotations.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import type { InstanceState } from "../providers/types.js";
import { VM_FINALIZER, type PeerPod, type PeerPodPhase } from "../kube/peerpod.js";

/** What the worker needs to know about a pod. */
export interface PodFacts {
  uid: string;
  /** Its runtime class is one of the policy's peer runtime classes, in a namespace the policy serves. */
  peer: boolean;
  bound: boolean;
  /** Terminating, Succeeded or Failed: its VM should go. */
  done: boolean;
  vmReady: boolean;
}

/** What the worker needs to know about a PeerPod record. */
export interface RecordFacts {
  podUID: string;
  phase: PeerPodPhase | undefined;
  instanceID: string | undefined;
  deleting: boolean;
  finalized: boolean;
}

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
  /** Ask the provider for the VM (idempotent on the record's instance name). */
  | { kind: "createInstance" }
  | { kind: "lookUpInstance" }
  /** The record holds a warm-pool VM: hand it to the pod (its data, then its tags). */
  | { kind: "claimInstance" }
  /** The VM exists but is not ready yet: look again later. */
  | { kind: "waitReady" }
  /** Record Ready, pod condition True, Event. */
  | { kind: "markReady" }
  /** The VM is gone or dying behind peerpods' back while the pod lives: replace it. */
  | { kind: "replaceInstance" }
  /** The pod is gone or done: delete every VM tagged with its UID, then release and delete the record. */
  | { kind: "teardown" };

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
  return forLivePod(pod, record, instance);
}

function withoutRecord(pod: PodFacts | undefined): Action {
  if (!pod) return { kind: "none", reason: "no pod and no record" };
  if (!pod.peer) return { kind: "none", reason: "not a peer pod" };
  if (pod.done) return { kind: "none", reason: "pod is done and has no record" };
  if (!pod.bound) return { kind: "none", reason: "pod not bound to a node yet" };
  return { kind: "createRecord" };
}

function forLivePod(pod: PodFacts, record: RecordFacts, instance: InstanceFacts): Action {
  if (!record.instanceID) return { kind: "createInstance" };
  if (instance.kind === "unknown") {
    // A served pod's VM is not asked after on every pod update: the periodic GC listing checks it.
    if (record.phase === "Ready" && pod.vmReady && !instance.verify) return { kind: "none", reason: "VM ready and pod told" };
    return { kind: "lookUpInstance" };
  }
  if (instance.kind === "absent" || instance.state === "stopping" || instance.state === "terminated") return { kind: "replaceInstance" };
  // A pool VM is taken only when ready; one that is not any more has lost its agent.
  if (instance.pooled) return instance.ready ? { kind: "claimInstance" } : { kind: "replaceInstance" };
  if (!instance.ready) return { kind: "waitReady" };
  if (record.phase !== "Ready" || !pod.vmReady) return { kind: "markReady" };
  return { kind: "none", reason: "VM ready and pod told" };
}

export function podFacts(pod: V1Pod, policy: CompiledPolicy): PodFacts {
  const meta = pod.metadata ?? {};
  const phase = pod.status?.phase;
  return {
    uid: meta.uid ?? "",
    peer: policy.isPeerPod(pod.spec?.runtimeClassName, meta.namespace ?? ""),
    bound: Boolean(pod.spec?.nodeName),
    done: Boolean(meta.deletionTimestamp) || phase === "Succeeded" || phase === "Failed",
    vmReady: (pod.status?.conditions ?? []).some((c) => c.type === VM_READY_CONDITION && c.status === "True"),
  };
}

export function recordFacts(record: PeerPod): RecordFacts {
  return {
    podUID: record.spec.podUID,
    phase: record.status?.phase,
    instanceID: record.status?.instanceID ?? undefined,
    deleting: Boolean(record.metadata.deletionTimestamp),
    finalized: !(record.metadata.finalizers ?? []).includes(VM_FINALIZER),
  };
}
