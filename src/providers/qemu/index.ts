import type { Provider, ProviderOptions } from "../types.js";
import { QemuProvider } from "./provider.js";
import { parseQemuSettings } from "./settings.js";

export { QemuProvider } from "./provider.js";

/** The qemu provider; the probe boot starts at once so the first pod does not wait for it. */
export async function createProvider(settings: Record<string, unknown> | undefined, options: ProviderOptions): Promise<Provider> {
  const provider = new QemuProvider(parseQemuSettings(settings), options);
  provider.platform().catch((error: unknown) => options.log.warn({ reason: (error as Error).message }, "qemu provider cannot boot VMs yet"));
  return provider;
}
