import type { InstanceType, PolicySpec } from "./schema.js";

/** A validated policy with lookups precomputed once, so the hot paths do no searching. */
export interface CompiledPolicy {
  spec: PolicySpec;
  generation: number;
  /** A pod of one of the policy's RuntimeClasses outside the excluded namespaces: the one rule for what peerpods handles. */
  isPeerPod(runtimeClassName: string | null | undefined, namespace: string): boolean;
  /** cpu, memory and every GPU resource name: what the webhook moves off the node. */
  strippedResources: ReadonlySet<string>;
  gpuResources: ReadonlySet<string>;
  instanceTypes: ReadonlyMap<string, InstanceType>;
  /** The catalog sorted cheapest first, then smallest: the order auto-selection tries. */
  byPreference: readonly InstanceType[];
  /** The instance types a namespace may use (the `*` entry, else all of them). */
  allowedFor(namespace: string): ReadonlySet<string>;
}

const byCostThenSize = (a: InstanceType, b: InstanceType): number =>
  (a.hourlyCost ?? Infinity) - (b.hourlyCost ?? Infinity) ||
  a.vcpus - b.vcpus ||
  a.memoryMiB - b.memoryMiB ||
  a.gpus - b.gpus ||
  a.name.localeCompare(b.name);

export function compilePolicy(spec: PolicySpec, generation: number): CompiledPolicy {
  const all = new Set(spec.instanceTypes.map((t) => t.name));
  const allowed = new Map(Object.entries(spec.allowedInstanceTypes ?? {}).map(([ns, names]) => [ns, new Set(names)]));
  const fallback = allowed.get("*") ?? all;
  const runtimeClassNames = new Set(spec.runtimeClassNames);
  const excludedNamespaces = new Set(spec.excludedNamespaces);
  return {
    spec,
    generation,
    isPeerPod: (runtimeClassName, namespace) => typeof runtimeClassName === "string" && runtimeClassNames.has(runtimeClassName) && !excludedNamespaces.has(namespace),
    strippedResources: new Set(["cpu", "memory", ...spec.gpuResourceNames]),
    gpuResources: new Set(spec.gpuResourceNames),
    instanceTypes: new Map(spec.instanceTypes.map((t) => [t.name, t])),
    byPreference: [...spec.instanceTypes].sort(byCostThenSize),
    allowedFor: (namespace) => allowed.get(namespace) ?? fallback,
  };
}
