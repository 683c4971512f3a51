import { z } from "zod";
import { PROVIDER_NAMES, providerSettingsSchemas } from "../providers/settings-schemas.js";
import { crossFieldIssues } from "./cross-field.js";
import { validationErrors, type PolicyValidationError } from "./issues.js";

/** Kubernetes label key/value and DNS-1123 names, as the apiserver checks them. */
const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS-1123 label").max(63);
const resourceName = z
  .string()
  .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, "must be a qualified resource name like kata.peerpods.io/vm")
  .max(253);
const instanceTypeName = z.string().min(1).max(64).regex(/^[A-Za-z0-9][-A-Za-z0-9_.]*$/, "must be letters, digits, '-', '_' or '.'");

export const instanceTypeSchema = z.strictObject({
  name: instanceTypeName,
  vcpus: z.number().int().min(1).max(1024),
  memoryMiB: z.number().int().min(64).max(16 * 1024 * 1024),
  gpus: z.number().int().min(0).max(64).default(0),
  zones: z.array(z.string().min(1)).optional(),
  hourlyCost: z.number().min(0).optional(),
});

const nodesSchema = z.strictObject({
  selector: z
    .strictObject({ matchLabels: z.record(z.string(), z.string()).default({}) })
    .default({ matchLabels: {} }),
  vmsPerNode: z.number().int().min(0).max(10_000).default(10),
});

const limitsSchema = z.strictObject({
  maxVMs: z.number().int().min(0).optional(),
  maxVCPUs: z.number().int().min(0).optional(),
});

/** Booted, idle VMs kept ready per instance type, so a peer pod's VM is ready without waiting for a boot. */
const warmPoolSchema = z.strictObject({
  pools: z
    .array(
      z.strictObject({
        instanceType: instanceTypeName,
        /** Idle VMs kept booted. */
        min: z.number().int().min(0).max(1000),
        /** Most pool VMs (idle and booting) of this type; default `min`. */
        max: z.number().int().min(0).max(1000).optional(),
        /** An idle VM older than this is replaced by a fresh one. */
        maxIdleSeconds: z.number().int().min(10).max(30 * 86_400).optional(),
      }),
    )
    .default([]),
  /** Cap on the summed `hourlyCost` of all pool VMs, cluster-wide. */
  maxIdleCost: z.number().min(0).optional(),
});

/** The cloud and each provider's own settings block, as that provider defines it. */
const providerSchema = z.strictObject({
  name: z.enum(PROVIDER_NAMES).default("qemu"),
  qemu: providerSettingsSchemas.qemu.optional(),
  aws: providerSettingsSchemas.aws.optional(),
  sim: providerSettingsSchemas.sim.optional(),
});

const DEFAULT_INSTANCE_TYPES = [
  { name: "small", vcpus: 1, memoryMiB: 512, gpus: 0, hourlyCost: 0.01 },
  { name: "medium", vcpus: 2, memoryMiB: 1024, gpus: 0, hourlyCost: 0.02 },
  { name: "large", vcpus: 4, memoryMiB: 2048, gpus: 0, hourlyCost: 0.04 },
];

export const policySpecSchema = z
  .strictObject({
    runtimeClassNames: z.array(dnsLabel).min(1).default(["kata-remote", "peerpods"]),
    extendedResourceName: resourceName.default("kata.peerpods.io/vm"),
    excludedNamespaces: z.array(dnsLabel).default(["kube-system"]),
    gpuResourceNames: z.array(resourceName).default(["nvidia.com/gpu"]),
    instanceTypes: z.array(instanceTypeSchema).min(1).default(DEFAULT_INSTANCE_TYPES),
    defaultInstanceType: instanceTypeName.optional(),
    allowInstanceTypeAnnotation: z.boolean().default(true),
    allowedInstanceTypes: z.record(z.string(), z.array(instanceTypeName)).optional(),
    nodes: nodesSchema.default({ selector: { matchLabels: {} }, vmsPerNode: 10 }),
    limits: limitsSchema.default({}),
    scheduling: z.strictObject({ strategy: z.enum(["Spread", "BinPack"]).default("Spread") }).default({ strategy: "Spread" }),
    readinessGate: z.boolean().default(true),
    provider: providerSchema.default({ name: "qemu" }),
    warmPool: warmPoolSchema.optional(),
  })
  // Also when fields are invalid, so that one pass reports every error.
  .superRefine((spec, ctx) => crossFieldIssues(spec).forEach((issue) => ctx.addIssue({ code: "custom", ...issue })), { when: () => true });

export type PolicySpec = z.output<typeof policySpecSchema>;
export type InstanceType = z.output<typeof instanceTypeSchema>;
export type WarmPoolSpec = z.output<typeof warmPoolSchema>;

export const POLICY_GROUP = "peerpods.io";
export const POLICY_VERSION = "v1alpha1";
export const POLICY_PLURAL = "peerpodpolicies";
export const POLICY_KIND = "PeerPodPolicy";
/** The cluster-scoped PeerPodPolicy with this name is the one in force. */
export const POLICY_NAME = "default";

/** Either a whole PeerPodPolicy object or its bare spec. */
const policyDocumentSchema = z.union([
  z.looseObject({ apiVersion: z.literal(`${POLICY_GROUP}/${POLICY_VERSION}`), kind: z.literal(POLICY_KIND), spec: z.unknown() }),
  z.record(z.string(), z.unknown()),
]);

export type PolicyParseResult = { ok: true; spec: PolicySpec } | { ok: false; errors: PolicyValidationError[] };

/** Validates a policy document (whole object or bare spec) and fills in defaults. */
export function parsePolicy(document: unknown): PolicyParseResult {
  const outer = policyDocumentSchema.safeParse(document ?? {});
  if (!outer.success) return { ok: false, errors: validationErrors(outer.error) };
  const isObject = "kind" in outer.data && outer.data.kind === POLICY_KIND;
  const specInput = isObject ? ((outer.data as { spec?: unknown }).spec ?? {}) : outer.data;
  const parsed = policySpecSchema.safeParse(specInput);
  if (!parsed.success) return { ok: false, errors: validationErrors(parsed.error, isObject ? ["spec"] : []) };
  return { ok: true, spec: parsed.data };
}

/** The embedded default policy: every default filled in. */
export function defaultPolicy(): PolicySpec {
  return policySpecSchema.parse({});
}
