import fastJsonPatch from "fast-json-patch";
import type { Operation } from "fast-json-patch";
import { ANNOTATION, VM_READY_CONDITION } from "../kube/annotations.js";
import { podEnvelope, type Envelope } from "../kube/envelope.js";
import type { Container, Pod, PodSpec, ResourceList, ResourceRequirements } from "../kube/pod.js";
import { QuantityError } from "../kube/quantity.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import type { InstanceType } from "../policy/schema.js";
import { selectInstanceType } from "../policy/select.js";

export type MutationResult =
  | { kind: "skip"; reason: string }
  | { kind: "patch"; patch: Operation[]; instanceType: InstanceType; envelope: Envelope; forced: boolean }
  | { kind: "deny"; message: string };

/** The resources taken off each container, keyed by container name; kept in an annotation so nothing is lost. */
export interface OriginalResources {
  containers?: Record<string, ResourceRequirements>;
  initContainers?: Record<string, ResourceRequirements>;
  pod?: ResourceRequirements;
}

/**
 * Rewrites a peer pod at CREATE: one unit of the extended resource instead of CPU, memory and GPUs,
 * with the chosen instance type in annotations. Pure: returns a JSON patch, a denial, or a skip.
 * Idempotent: on its own output it yields an empty patch.
 */
export function mutatePod(pod: Pod, namespace: string, policy: CompiledPolicy): MutationResult {
  if (!policy.isPeerPod(pod.spec?.runtimeClassName, namespace)) return { kind: "skip", reason: "not a peer pod" };
  if (!Array.isArray(pod.spec.containers) || pod.spec.containers.length === 0) {
    return { kind: "deny", message: "a peer pod needs at least one container" };
  }
  const annotations = pod.metadata?.annotations ?? {};
  const previous = parseOriginals(annotations[ANNOTATION.originalResources]);
  if (previous instanceof Error) return { kind: "deny", message: previous.message };

  const originals = collectOriginals(pod.spec, previous, policy.strippedResources);
  let envelope: Envelope;
  try {
    envelope = podEnvelope(
      {
        containers: pod.spec.containers.map((c) => ({ resources: originals.containers?.[c.name] })),
        initContainers: (pod.spec.initContainers ?? []).map((c) => ({ resources: originals.initContainers?.[c.name], restartPolicy: c.restartPolicy })),
        podResources: originals.pod,
      },
      policy.gpuResources,
    );
  } catch (error) {
    if (error instanceof QuantityError) return { kind: "deny", message: `invalid resource quantity: ${error.message}` };
    throw error;
  }

  const selection = selectInstanceType(policy, namespace, envelope, annotations[ANNOTATION.kataMachineType]);
  if (!selection.ok) return { kind: "deny", message: selection.reason };

  const mutated = rewrite(pod, policy, selection.instanceType, originals);
  const patch = fastJsonPatch.compare(pod, mutated);
  return { kind: "patch", patch, instanceType: selection.instanceType, envelope, forced: selection.forced };
}

function parseOriginals(value: string | undefined): OriginalResources | Error {
  if (value === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(value);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as OriginalResources;
  } catch {
    // fall through to the error below
  }
  return new Error(`annotation ${ANNOTATION.originalResources} is reserved for peerpods and must hold a JSON object; remove it`);
}

/** Per container: what an earlier pass recorded, overlaid with what the container asks for now. */
function collectOriginals(spec: PodSpec, previous: OriginalResources, stripped: ReadonlySet<string>): OriginalResources {
  const result: OriginalResources = {};
  const containers = gatherList(spec.containers, previous.containers, stripped);
  const initContainers = gatherList(spec.initContainers ?? [], previous.initContainers, stripped);
  const pod = merge(asRequirements(previous.pod), pick(spec.resources, stripped));
  if (containers) result.containers = containers;
  if (initContainers) result.initContainers = initContainers;
  if (pod) result.pod = pod;
  return result;
}

function gatherList(
  containers: readonly Container[],
  previous: Record<string, ResourceRequirements> | undefined,
  stripped: ReadonlySet<string>,
): Record<string, ResourceRequirements> | undefined {
  let out: Record<string, ResourceRequirements> | undefined;
  for (const container of containers) {
    const merged = merge(asRequirements(previous?.[container.name]), pick(container.resources, stripped));
    if (merged) (out ??= {})[container.name] = merged;
  }
  return out;
}

function asRequirements(value: unknown): ResourceRequirements | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { requests, limits } = value as ResourceRequirements;
  return { requests: stringsOnly(requests), limits: stringsOnly(limits) };
}

function stringsOnly(list: unknown): ResourceList | undefined {
  if (list === null || typeof list !== "object") return undefined;
  const entries = Object.entries(list).filter(([, v]) => typeof v === "string");
  return entries.length ? Object.fromEntries(entries) : undefined;
}

/** The stripped resources of a requirements block, or undefined when it has none. */
function pick(resources: ResourceRequirements | undefined, names: ReadonlySet<string>): ResourceRequirements | undefined {
  const requests = pickList(resources?.requests, names);
  const limits = pickList(resources?.limits, names);
  return requests || limits ? { requests, limits } : undefined;
}

function pickList(list: ResourceList | undefined, names: ReadonlySet<string>): ResourceList | undefined {
  if (!list) return undefined;
  const entries = Object.entries(list).filter(([name]) => names.has(name));
  return entries.length ? Object.fromEntries(entries.map(([n, v]) => [n, String(v)])) : undefined;
}

function merge(base: ResourceRequirements | undefined, over: ResourceRequirements | undefined): ResourceRequirements | undefined {
  const requests = mergeList(base?.requests, over?.requests);
  const limits = mergeList(base?.limits, over?.limits);
  if (!requests && !limits) return undefined;
  const out: ResourceRequirements = {};
  if (requests) out.requests = requests;
  if (limits) out.limits = limits;
  return out;
}

function mergeList(base: ResourceList | undefined, over: ResourceList | undefined): ResourceList | undefined {
  if (!base) return over;
  if (!over) return base;
  return { ...base, ...over };
}

/** The pod as peerpods wants it stored: copy-on-write over only the paths it changes. */
function rewrite(pod: Pod, policy: CompiledPolicy, type: InstanceType, originals: OriginalResources): Pod {
  const vm = policy.spec.extendedResourceName;
  const removed = new Set([...policy.strippedResources, vm]);
  const containers = pod.spec.containers.map((c, i) => withResources(c, removed, i === 0 ? vm : undefined));
  const spec: PodSpec = { ...pod.spec, containers };
  if (pod.spec.initContainers) spec.initContainers = pod.spec.initContainers.map((c) => withResources(c, removed));
  if (pod.spec.resources) spec.resources = stripRequirements(pod.spec.resources, removed);
  if (policy.spec.readinessGate && !pod.spec.readinessGates?.some((g) => g.conditionType === VM_READY_CONDITION)) {
    spec.readinessGates = [...(pod.spec.readinessGates ?? []), { conditionType: VM_READY_CONDITION }];
  }
  const annotations: Record<string, string> = {
    ...pod.metadata?.annotations,
    [ANNOTATION.instanceType]: type.name,
    [ANNOTATION.kataMachineType]: type.name,
    [ANNOTATION.kataVcpus]: String(type.vcpus),
    [ANNOTATION.kataMemory]: String(type.memoryMiB),
  };
  if (Object.keys(originals).length > 0) annotations[ANNOTATION.originalResources] = JSON.stringify(originals);
  else delete annotations[ANNOTATION.originalResources];
  return { ...pod, metadata: { ...pod.metadata, annotations }, spec };
}

function withResources(container: Container, removed: ReadonlySet<string>, vmResource?: string): Container {
  const resources = stripRequirements(container.resources ?? {}, removed);
  if (vmResource) {
    resources.requests = { ...resources.requests, [vmResource]: "1" };
    resources.limits = { ...resources.limits, [vmResource]: "1" };
  }
  return { ...container, resources };
}

function stripRequirements(resources: ResourceRequirements, removed: ReadonlySet<string>): ResourceRequirements {
  const out: ResourceRequirements = { ...resources };
  for (const key of ["requests", "limits"] as const) {
    const list = resources[key];
    if (!list) continue;
    const kept = Object.entries(list).filter(([name]) => !removed.has(name));
    if (kept.length) out[key] = Object.fromEntries(kept);
    else delete out[key];
  }
  return out;
}
