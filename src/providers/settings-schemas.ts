import { awsSettingsSchema } from "./aws/settings.js";
import { qemuSettingsSchema } from "./qemu/settings.js";
import { simSettingsSchema } from "./sim/settings.js";

/** Each provider's settings block, by the provider's name in the policy (`provider.<name>`). */
export const providerSettingsSchemas = {
  qemu: qemuSettingsSchema,
  aws: awsSettingsSchema,
  sim: simSettingsSchema,
} as const;

export type ProviderName = keyof typeof providerSettingsSchemas;

export const PROVIDER_NAMES = Object.keys(providerSettingsSchemas) as [ProviderName, ...ProviderName[]];
