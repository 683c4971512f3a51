import { ZONE_LABEL } from "../policy/nodes.js";
import { ANNOTATION } from "../kube/annotations.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { hasLimits, limitExceeded } from "../policy/limits.js";
import type { InstanceType } from "../policy/schema.js";
import type { PodObject, SchedulingState } from "./state.js";

/** What the extender makes of the pod being scheduled. */
export type PodClass =
  | { kind: "plain" }
  | { kind: "invalid"; reason: string }
  | { kind: "peer"; uid: string; instanceType: InstanceType };

export function classifyPod(pod: PodObject, policy: CompiledPolicy): PodClass {
  const namespace = pod.metadata?.namespace || "default";
  if (!policy.isPeerPod(pod.spec?.runtimeClassName, namespace)) return { kind: "plain" };
  const uid = pod.metadata?.uid;
  if (!uid) return { kind: "invalid", reason: "peer pod has no metadata.uid" };
  const name = pod.metadata?.annotations?.[ANNOTATION.instanceType];
  if (!name) return { kind: "invalid", reason: `peer pod has no ${ANNOTATION.instanceType} annotation: it was not admitted by the peerpods webhook; recreate it` };
  const instanceType = policy.instanceTypes.get(name);
  if (!instanceType) return { kind: "invalid", reason: `instance type "${name}" is no longer in the policy's catalog; recreate the pod` };
  return { kind: "peer", uid, instanceType };
}

export interface FilterOutcome {
  passed: string[];
  /** Nodes where preemption could help (slots, limits). */
  failed: Record<string, string>;
  /** Nodes preemption cannot fix (selector, zone, bad pod). */
  unresolvable: Record<string, string>;
}

/** Reasons are node-independent so the scheduler's event can aggregate them ("3 node(s) ..."). */
export const REASON = {
  notSelected: "node does not match the peer-pod node selector (policy nodes.selector)",
  unknownNode: "node not yet seen by peerpods",
  slotsFull: "all peer-pod VM slots on the node are in use",
} as const;

function zoneReason(instanceType: InstanceType, zone: string | undefined): string | undefined {
  const zones = instanceType.zones;
  if (!zones || (zone !== undefined && zones.includes(zone))) return undefined;
  return zone === undefined
    ? `node has no ${ZONE_LABEL} label and instance type ${instanceType.name} is offered only in ${zones.join(", ")}`
    : `instance type ${instanceType.name} is not offered in zone ${zone} (offered in ${zones.join(", ")})`;
}

function unresolvableEverywhere(nodeNames: readonly string[], reason: string): FilterOutcome {
  return { passed: [], failed: {}, unresolvable: Object.fromEntries(nodeNames.map((name) => [name, reason])) };
}

/**
 * Filter verb, pure over the state: which of `nodeNames` may take the pod, with a reason for each one
 * that may not. `providerProblem` (the cloud is unhealthy) turns every node away for peer pods: no
 * node can get the pod a VM then, whatever its advertised slots say.
 */
export function filterNodes(pod: PodClass, nodeNames: readonly string[], state: SchedulingState, providerProblem?: string): FilterOutcome {
  const outcome: FilterOutcome = { passed: [], failed: {}, unresolvable: {} };
  if (pod.kind === "plain") {
    outcome.passed = [...nodeNames];
    return outcome;
  }
  if (pod.kind === "invalid") return unresolvableEverywhere(nodeNames, pod.reason);
  if (providerProblem !== undefined) return unresolvableEverywhere(nodeNames, providerProblem);
  const { limits } = state.policy.spec;
  const limit = hasLimits(limits) ? limitExceeded(limits, state.usage(pod.uid), pod.instanceType) : undefined;
  if (limit) {
    for (const name of nodeNames) outcome.failed[name] = limit;
    return outcome;
  }
  for (const name of nodeNames) {
    const node = state.node(name);
    if (!node) outcome.failed[name] = REASON.unknownNode;
    else if (!node.matches) outcome.unresolvable[name] = REASON.notSelected;
    else {
      const zone = zoneReason(pod.instanceType, node.zone);
      if (zone) outcome.unresolvable[name] = zone;
      else if (state.vmsOn(name) >= node.slots) outcome.failed[name] = REASON.slotsFull;
      else outcome.passed.push(name);
    }
  }
  return outcome;
}

export interface HostPriority {
  Host: string;
  Score: number;
}

export const MAX_SCORE = 10;

/**
 * Prioritize verb: 0..10 relative to the other candidates. Spread gives the emptiest node 10 and
 * the fullest 0; BinPack the reverse. Plain pods and equal nodes all get the same score.
 */
export function scoreNodes(pod: PodClass, nodeNames: readonly string[], state: SchedulingState): HostPriority[] {
  if (pod.kind !== "peer") return nodeNames.map((Host) => ({ Host, Score: 0 }));
  const used = nodeNames.map((name) => state.vmsOn(name));
  let min = Infinity;
  let max = -Infinity;
  for (const count of used) {
    if (count < min) min = count;
    if (count > max) max = count;
  }
  const range = max - min;
  const spread = state.policy.spec.scheduling.strategy === "Spread";
  return nodeNames.map((Host, i) => {
    if (range === 0) return { Host, Score: MAX_SCORE };
    const fullness = (used[i]! - min) / range;
    return { Host, Score: Math.round(MAX_SCORE * (spread ? 1 - fullness : fullness)) };
  });
}
