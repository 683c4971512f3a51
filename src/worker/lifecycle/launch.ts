import type { V1Pod } from "@kubernetes/client-node";
import type { PeerPod } from "../../kube/peerpod.js";
import { vmOperations } from "../../metrics/worker.js";
import type { CompiledPolicy } from "../../policy/compiled.js";
import { instanceSpecFor, podCommand } from "../../providers/instance-spec.js";
import { ProviderError, type Instance, type InstanceSpec } from "../../providers/types.js";
import type { PoolClaim } from "../pool/manager.js";
import { isRefusal } from "./refuse.js";
import { podEvent, recordFailure, setFound, type State, type StepDeps } from "./step.js";

/** A pod waiting for room under the limits is looked at again after this long, if no VM going wakes it first. */
export const ROOM_RECHECK_MS = 30_000;

type LaunchDeps = Pick<StepDeps, "clusterId" | "provider" | "writes" | "events" | "policy" | "pool" | "budget" | "signal">;

/**
 * Gets the pod a VM: an idle pool VM when `from` is the pool and one is there (its claim recorded
 * first, see `recordPoolClaim`), else a cold boot within the policy's limits.
 */
export async function createInstance(deps: LaunchDeps, state: State, from: "pool" | "cloud"): Promise<void> {
  const record = state.record!;
  const claim = from === "pool" ? deps.pool!.take(record.spec.instanceType) : undefined;
  if (claim?.result === "hit") return recordPoolClaim(deps, state, claim.instance);
  const spec = podInstanceSpec(state.pod!, record, deps.policy(), deps.clusterId);
  if (!(await roomUnderLimits(deps, state, spec))) return;
  const started = Date.now();
  let instance: Instance;
  try {
    instance = await createMakingRoom(deps, state, spec);
  } catch (error) {
    deps.budget?.release(state.key);
    // a refusal is recorded as the end of the attempts (see refuse.ts), not as one failure more
    if (!isRefusal(error)) await recordFailure(deps, state, "create", error);
    throw error;
  }
  vmOperations.inc({ op: "create", result: "ok" });
  await recordCreated(deps, state, instance, claim);
  state.log.info({ instanceId: instance.id, instanceType: record.spec.instanceType, ms: Date.now() - started }, "VM created");
}

/** The VM the worker asks for a pod: the type and the instance name its record holds. */
export function podInstanceSpec(pod: V1Pod, record: PeerPod, policy: CompiledPolicy, clusterId: string): InstanceSpec {
  const type = policy.instanceTypes.get(record.spec.instanceType);
  if (!type) throw new ProviderError("invalid", `instance type "${record.spec.instanceType}" is not in the policy's catalog`);
  const owner = { podUID: record.spec.podUID, namespace: pod.metadata?.namespace, name: pod.metadata?.name, command: podCommand(pod) };
  return instanceSpecFor(clusterId, record.spec.instanceName, type, owner);
}

/** Takes room for the VM under the policy's limits; without room the record says why and the pod is told once per wait. */
async function roomUnderLimits(deps: LaunchDeps, state: State, spec: InstanceSpec): Promise<boolean> {
  const room = deps.budget?.take(state.key, spec.instanceType, deps.policy().spec.limits);
  if (!room || room.ok) return true;
  state.requeueAfterMs = ROOM_RECHECK_MS;
  if (!room.first) return false;
  const message = `waiting for room under the policy's limits: ${room.reason}`;
  vmOperations.inc({ op: "create", result: "limit" });
  state.log.warn({ instanceType: state.record!.spec.instanceType }, message);
  podEvent(deps, state, "Warning", "VMLimitReached", message);
  try {
    state.record = await deps.writes.patchRecordStatus(state.record!, { phase: "Pending", message });
  } catch (error) {
    // the next attempt is a first wait again, so the record gets its message
    deps.budget?.release(state.key);
    throw error;
  }
  return false;
}

/** A cold create; when the cloud or the host is full, an idle pool VM makes room for the pod's. */
async function createMakingRoom(deps: LaunchDeps, state: State, spec: InstanceSpec): Promise<Instance> {
  try {
    return await deps.provider.create(spec);
  } catch (error) {
    if (!(error instanceof ProviderError && error.kind === "quota") || !(await deps.pool?.evictIdle())) throw error;
    state.log.info({ reason: error.message }, "limit reached: an idle pool VM was deleted to make room");
    return deps.provider.create(spec);
  }
}

/**
 * The claim of a warm-pool VM goes into the PeerPod before anything is done to the VM: after a
 * crash the record says whose it is (the pool leaves VMs that records hold alone), and the next
 * reconcile finishes the hand-over (decide: claimInstance).
 */
async function recordPoolClaim(deps: LaunchDeps, state: State, instance: Instance): Promise<void> {
  await recordCreated(deps, state, instance, { result: "hit", instance });
  state.log.info({ instanceId: instance.id, instanceType: instance.instanceType }, "warm-pool VM claimed");
}

/** The record names the pod's new VM (and, for a pooled type, whether it came from the pool). */
async function recordCreated(deps: LaunchDeps, state: State, instance: Instance, claim: PoolClaim | undefined): Promise<void> {
  state.record = await deps.writes.patchRecordStatus(state.record!, {
    phase: "Creating",
    instanceID: instance.id,
    address: instance.privateIp ?? null,
    agentEndpoint: instance.agentEndpoint ?? null,
    message: null,
    ...(claim ? { warmPool: claim.result } : {}),
  });
  setFound(state, instance);
}
