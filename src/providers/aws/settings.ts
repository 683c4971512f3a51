import { z } from "zod";
import { parseProviderSettings } from "../settings.js";
import { TAG } from "../types.js";

const reservedTagKeys = new Set<string>([...Object.values(TAG), "Name"]);

/**
 * The policy's `provider.aws` block. Credentials are deliberately not settings: they come from the
 * standard AWS chain (environment, shared config, web identity, instance role) only, so they never
 * sit in a policy object that is logged, stored in the cluster or shown in an Event.
 */
export const awsSettingsSchema = z.strictObject({
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region such as eu-west-1"),
  /** An EC2-compatible endpoint instead of the region's own (tests, private endpoints). */
  endpoint: z.url().optional(),
  /** The pod VM image; an instance spec's own image takes precedence. */
  imageId: z.string().regex(/^ami-[0-9a-f]+$/, "must be an AMI id (ami-...)"),
  /** Where VMs may go; a subnet in a zone the instance type is offered in is chosen per VM. */
  subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, "must be a subnet id (subnet-...)")).default([]),
  securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/, "must be a security group id (sg-...)")).default([]),
  keyName: z.string().min(1).max(255).optional(),
  /** Instance profile name or ARN. */
  instanceProfile: z.string().min(1).max(2048).optional(),
  extraTags: z
    .record(
      z
        .string()
        .min(1)
        .max(128)
        .refine((key) => !reservedTagKeys.has(key) && !key.startsWith("aws:"), "is set by peerpods or reserved by AWS"),
      z.string().max(256),
    )
    .default({}),
  rootVolumeGiB: z.number().int().min(1).max(16_384).optional(),
  /** Port the agent in the VM listens on, reached at the VM's private address. */
  agentPort: z.number().int().min(1).max(65_535).default(15150),
  /** Where cloud-init writes the pod's agent configuration inside the VM. */
  agentConfigPath: z.string().regex(/^\/[^\0]*$/, "must be an absolute path").default("/run/peerpods/agent-config"),
  /** Ready means running and passing EC2 status checks; false: running is enough. */
  statusChecks: z.boolean().default(true),
  /** How often the worker lists booting VMs (DescribeInstances + DescribeInstanceStatus) to see them ready. */
  readyPollMs: z.number().int().min(200).max(60_000).default(2_000),
  pageSize: z.number().int().min(5).max(1000).default(500),
  /** SDK attempts per call; throttling and 5xx are retried with jittered exponential backoff. */
  maxAttempts: z.number().int().min(1).max(20).default(5),
  requestTimeoutMs: z.number().int().min(100).max(300_000).default(15_000),
  healthTimeoutMs: z.number().int().min(100).max(60_000).default(3_000),
});

export type AwsSettings = z.output<typeof awsSettingsSchema>;

/** Validates the settings block; the error names every bad field. */
export function parseAwsSettings(settings: unknown): AwsSettings {
  return parseProviderSettings("aws", awsSettingsSchema, settings);
}
