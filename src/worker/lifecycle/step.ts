import type { V1Pod } from "@kubernetes/client-node";
import { eventTarget, POD, type EventRecorder, type EventType } from "../../kube/events.js";
import type { PeerPod } from "../../kube/peerpod.js";
import type { Logger } from "../../log/logger.js";
import { vmOperations } from "../../metrics/worker.js";
import type { CompiledPolicy } from "../../policy/compiled.js";
import { TAG, type Instance, type Provider } from "../../providers/types.js";
import type { ClusterWrites } from "../cluster-writes.js";
import { errorKind } from "../counted-provider.js";
import type { InstanceFacts } from "../decide.js";
import type { PoolClaims } from "../pool/manager.js";
import type { VmBudget } from "../vm-budget.js";

/** When each pod was bound to its node, for the bound → ready time. */
export interface BindTimes {
  boundAt(key: string, pod: V1Pod): number;
}

/** What the lifecycle steps act with. */
export interface StepDeps {
  clusterId: string;
  provider: Provider;
  writes: ClusterWrites;
  events: EventRecorder;
  policy: () => CompiledPolicy;
  /** The warm pool, when the policy and the provider make one. */
  pool?: PoolClaims;
  /** Counts VMs against the policy's cluster-wide limits before a cold create. */
  budget?: VmBudget;
  bindTimes: BindTimes;
  /** The VM this replica last marked ready per pod key, to tell a PeerPod cache that is behind that patch. */
  readyMarks: Map<string, string>;
  /** Aborted when the worker stops or loses its Lease; it cancels the provider's calls, and what it cancels is no failure to record. */
  signal: AbortSignal;
}

/** What one reconcile knows; steps update it with what the API calls return, so the loop never waits for the informers. */
export interface State {
  key: string;
  pod: V1Pod | undefined;
  record: PeerPod | undefined;
  /** The informer's copy the reconcile began with: any other `record` is the apiserver's, read or written during this reconcile. */
  cached: PeerPod | undefined;
  instance: InstanceFacts;
  found: Instance | undefined;
  /** The vm-ready condition as last written by this reconcile, ahead of the informer. */
  vmReady: boolean | undefined;
  /** Set by a step that has to wait (for room under the limits): the reconcile ends there. */
  requeueAfterMs?: number;
  log: Logger;
}

/** A reconcile's start: the informers' copies, nothing known of the VM yet. */
export function newState(key: string, pod: V1Pod | undefined, record: PeerPod | undefined, log: Logger, verify = false): State {
  return { key, pod, record, cached: record, instance: { kind: "unknown", verify }, found: undefined, vmReady: undefined, log: log.child({ pod: key }) };
}

/** The VM as the cloud last showed it, or none: `found` and the facts decide reads from it. */
export function setFound(state: State, instance: Instance | undefined): void {
  state.found = instance;
  state.instance = instance ? { kind: "present", state: instance.state, ready: instance.ready, pooled: instance.tags[TAG.pool] !== undefined } : { kind: "absent" };
}

/** Nothing known of the VM any more (the record changed): the next decision asks the cloud again. */
export function forgetInstance(state: State): void {
  state.found = undefined;
  state.instance = { kind: "unknown" };
}

/** An Event on the reconciled pod. */
export function podEvent(deps: Pick<StepDeps, "events">, state: State, type: EventType, reason: string, message: string): void {
  const [namespace, name] = splitKey(state.key);
  const { uid = state.record?.spec.podUID, resourceVersion } = state.pod?.metadata ?? {};
  deps.events.record(eventTarget(POD, { namespace, name, uid, resourceVersion }), type, reason, message);
}

/** A pod key's `[namespace, name]`. */
export function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/** A failed provider call: counted, an Event with the reason, the record Failed (or still Deleting) with the message. */
export async function recordFailure(deps: Pick<StepDeps, "events" | "writes" | "signal">, state: State, op: "create" | "delete", error: unknown): Promise<void> {
  if (deps.signal.aborted) return;
  const kind = errorKind(error);
  vmOperations.inc({ op, result: kind === "quota" ? "quota" : "error" });
  const message = `${op} VM failed${kind === "quota" ? " (cloud quota reached)" : ""}: ${(error as Error).message}`;
  const reason = kind === "quota" ? "VMQuotaExceeded" : op === "create" ? "VMCreateFailed" : "VMDeleteFailed";
  state.log.warn({ err: error, kind }, message);
  podEvent(deps, state, "Warning", reason, message);
  if (!state.record) return;
  await deps.writes
    .patchRecordStatus(state.record, { phase: op === "create" ? "Failed" : "Deleting", message })
    .then((record) => (state.record = record))
    .catch((patchError: unknown) => state.log.warn({ err: patchError }, "could not record the failure on the PeerPod"));
}
