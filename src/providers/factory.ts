import type { ProviderName } from "./settings-schemas.js";
import type { Provider, ProviderOptions } from "./types.js";

/** The policy's `provider` block: which cloud, and (validated by the provider itself) its settings. */
export type ProviderConfig = { name: ProviderName } & { [Name in ProviderName]?: Record<string, unknown> };

/** A provider module: validates its own settings block of the policy and builds the client. */
export interface ProviderModule {
  createProvider(settings: Record<string, unknown> | undefined, options: ProviderOptions): Promise<Provider>;
}

/** Loaded on demand so that, e.g., the AWS SDK is only imported where the aws provider is used. */
const MODULES: Partial<Record<ProviderName, () => Promise<ProviderModule>>> = {
  sim: () => import("./sim/index.js"),
  aws: () => import("./aws/index.js"),
  qemu: () => import("./qemu/index.js"),
};

export async function createProvider(config: ProviderConfig, options: ProviderOptions): Promise<Provider> {
  const load = MODULES[config.name];
  if (!load) throw new Error(`provider "${config.name}" is not available in this build`);
  const module = await load();
  return module.createProvider(config[config.name], { ...options, log: options.log.child({ provider: config.name }) });
}
