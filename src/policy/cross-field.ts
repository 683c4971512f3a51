import { providerSettingsSchemas } from "../providers/settings-schemas.js";

/** A rule broken between two parts of a policy spec, at the path of the part to change. */
export interface CrossFieldIssue {
  path: (string | number)[];
  message: string;
}

type Loose = Record<string, unknown>;

const isObject = (value: unknown): value is Loose => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The rules that tie one part of a policy spec to another. They run on the spec as zod left it,
 * even when its own fields are invalid, so that one pass reports every error: each rule reads only
 * what it finds well-formed and skips the rest (its own field errors are reported already).
 */
export function crossFieldIssues(spec: unknown): CrossFieldIssue[] {
  if (!isObject(spec)) return [];
  const catalog = catalogIssues(spec.instanceTypes);
  const names = catalog.names;
  return [
    ...catalog.issues,
    ...(names ? referenceIssues(spec, names) : []),
    ...warmPoolIssues(spec.warmPool, names),
    ...providerIssues(spec.provider),
  ];
}

/** Duplicate type names, and the catalog's names (undefined when instanceTypes is not a list). */
function catalogIssues(instanceTypes: unknown): { names?: Set<string>; issues: CrossFieldIssue[] } {
  if (!Array.isArray(instanceTypes)) return { issues: [] };
  const names = new Set<string>();
  const issues: CrossFieldIssue[] = [];
  instanceTypes.forEach((type: unknown, i) => {
    const name = isObject(type) ? type.name : undefined;
    if (typeof name !== "string") return;
    if (names.has(name)) issues.push({ path: ["instanceTypes", i, "name"], message: `duplicate instance type "${name}"` });
    names.add(name);
  });
  return { names, issues };
}

/** defaultInstanceType and allowedInstanceTypes must name types of the catalog. */
function referenceIssues(spec: Loose, names: ReadonlySet<string>): CrossFieldIssue[] {
  const issues: CrossFieldIssue[] = [];
  const notListed = (name: unknown): name is string => typeof name === "string" && !names.has(name);
  if (notListed(spec.defaultInstanceType)) issues.push({ path: ["defaultInstanceType"], message: `"${spec.defaultInstanceType}" is not in instanceTypes` });
  if (isObject(spec.allowedInstanceTypes)) {
    for (const [namespace, allowed] of Object.entries(spec.allowedInstanceTypes)) {
      if (!Array.isArray(allowed)) continue;
      allowed.forEach((name: unknown, i) => {
        if (notListed(name)) issues.push({ path: ["allowedInstanceTypes", namespace, i], message: `"${name}" is not in instanceTypes` });
      });
    }
  }
  return issues;
}

/** One pool per listed type, and no pool whose max is below its min. */
function warmPoolIssues(warmPool: unknown, names: ReadonlySet<string> | undefined): CrossFieldIssue[] {
  const pools = isObject(warmPool) && Array.isArray(warmPool.pools) ? (warmPool.pools as unknown[]) : [];
  const issues: CrossFieldIssue[] = [];
  const pooled = new Set<string>();
  pools.forEach((pool, i) => {
    if (!isObject(pool)) return;
    const at = ["warmPool", "pools", i];
    const { instanceType, min, max } = pool;
    if (typeof instanceType === "string") {
      if (names && !names.has(instanceType)) issues.push({ path: [...at, "instanceType"], message: `"${instanceType}" is not in instanceTypes` });
      if (pooled.has(instanceType)) issues.push({ path: [...at, "instanceType"], message: `duplicate pool for "${instanceType}"` });
      pooled.add(instanceType);
    }
    if (typeof max === "number" && typeof min === "number" && max < min) issues.push({ path: [...at, "max"], message: `max (${max}) is below min (${min})` });
  });
  return issues;
}

/** The chosen provider's settings block may be left out only when its settings all have defaults. */
function providerIssues(provider: unknown): CrossFieldIssue[] {
  if (!isObject(provider) || typeof provider.name !== "string" || !(provider.name in providerSettingsSchemas)) return [];
  const name = provider.name as keyof typeof providerSettingsSchemas;
  if (provider[name] !== undefined) return [];
  const defaults = providerSettingsSchemas[name].safeParse({});
  if (defaults.success) return [];
  return defaults.error.issues.map((issue) => ({
    path: ["provider", name, ...issue.path.map((key) => (typeof key === "number" ? key : String(key)))],
    message: `required when provider.name is "${name}" (${issue.message})`,
  }));
}
