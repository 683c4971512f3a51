import type { Operation } from "fast-json-patch";
import { ANNOTATION } from "../kube/annotations.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { matchesSelector, slotsOf, type StringMap } from "../policy/nodes.js";

/** The parts of a Node the advertiser reads (informer objects and wire JSON alike). */
export interface NodeStatusObject {
  metadata?: { name?: string; labels?: StringMap; annotations?: StringMap };
  status?: {
    capacity?: StringMap;
    allocatable?: StringMap;
    conditions?: readonly { type: string; status: string }[];
  };
}

/** Capacity counts every slot; allocatable only the usable ones (the device-plugin rule). */
export interface Slots {
  capacity: number;
  allocatable: number;
}

export const isReady = (node: NodeStatusObject): boolean => node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** What the node should advertise, or undefined when it must not advertise the resource at all. */
export function desiredSlots(node: NodeStatusObject, policy: CompiledPolicy, providerHealthy: boolean): Slots | undefined {
  if (!matchesSelector(node.metadata?.labels, policy)) return undefined;
  const { slots } = slotsOf(node.metadata?.annotations, policy);
  return { capacity: slots, allocatable: isReady(node) && providerHealthy ? slots : 0 };
}

/** JSON-pointer escaping of one path segment (`/` in resource names becomes `~1`). */
export const pointerSegment = (key: string): string => key.replaceAll("~", "~0").replaceAll("/", "~1");

const FIELDS = ["capacity", "allocatable"] as const;

/**
 * The JSON patch that brings the node's status to `wanted` for `resource` and removes every
 * `formerResources` name (a resource name an earlier policy used). Empty when nothing changes.
 */
export function statusPatch(node: NodeStatusObject, resource: string, formerResources: Iterable<string>, wanted: Slots | undefined): Operation[] {
  const ops: Operation[] = [];
  for (const field of FIELDS) {
    const current = node.status?.[field];
    const value = wanted === undefined ? undefined : String(wanted[field]);
    if (current === undefined) {
      if (value !== undefined) ops.push({ op: "add", path: `/status/${field}`, value: { [resource]: value } });
      continue;
    }
    if (value !== undefined && current[resource] !== value) ops.push({ op: "add", path: `/status/${field}/${pointerSegment(resource)}`, value });
    if (value === undefined && current[resource] !== undefined) ops.push({ op: "remove", path: `/status/${field}/${pointerSegment(resource)}` });
    for (const former of formerResources) {
      if (former !== resource && current[former] !== undefined) ops.push({ op: "remove", path: `/status/${field}/${pointerSegment(former)}` });
    }
  }
  return ops;
}

/** Annotation changes as a JSON merge patch: a value to set, null to remove. */
export type AnnotationPatch = Record<string, string | null>;

/**
 * The node's advertisement annotations when they must change: on an advertising node the policy
 * generation and the resource name, on any other node none; undefined when they are right already.
 */
export function stampPatch(node: NodeStatusObject, wanted: Slots | undefined, generation: number, resource: string): AnnotationPatch | undefined {
  const wantedValues = { [ANNOTATION.policyGeneration]: String(generation), [ANNOTATION.advertisedResource]: resource };
  const current = node.metadata?.annotations;
  const patch: AnnotationPatch = {};
  let changed = false;
  for (const [key, value] of Object.entries(wantedValues)) {
    const next = wanted === undefined ? undefined : value;
    if (current?.[key] === next) continue;
    patch[key] = next ?? null;
    changed = true;
  }
  return changed ? patch : undefined;
}
