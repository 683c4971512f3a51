import { ANNOTATION } from "../kube/annotations.js";
import type { CompiledPolicy } from "./compiled.js";

/** Label that names a node's zone; compared with an instance type's `zones`. */
export const ZONE_LABEL = "topology.kubernetes.io/zone";

export type StringMap = Readonly<Record<string, string>>;

/** Whether a node with these labels may host peer pods under the policy's `nodes.selector`. */
export function matchesSelector(labels: StringMap | undefined, policy: CompiledPolicy): boolean {
  for (const [key, value] of Object.entries(policy.spec.nodes.selector.matchLabels)) {
    if (labels?.[key] !== value) return false;
  }
  return true;
}

const MAX_SLOTS = 10_000;

/**
 * VM slots a node offers: annotation `peerpods.io/vms-per-node` when it holds a whole number
 * from 0 to 10000, else the policy's `nodes.vmsPerNode`. `invalid` explains an ignored annotation.
 */
export function slotsOf(annotations: StringMap | undefined, policy: CompiledPolicy): { slots: number; invalid?: string } {
  const value = annotations?.[ANNOTATION.vmsPerNode];
  const fallback = policy.spec.nodes.vmsPerNode;
  if (value === undefined) return { slots: fallback };
  const n = Number(value);
  if (/^\s*\d+\s*$/.test(value) && n <= MAX_SLOTS) return { slots: n };
  return { slots: fallback, invalid: `annotation ${ANNOTATION.vmsPerNode}="${value.slice(0, 40)}" is not a whole number from 0 to ${MAX_SLOTS}; using nodes.vmsPerNode=${fallback}` };
}
