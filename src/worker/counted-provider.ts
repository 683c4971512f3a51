import { providerErrors } from "../metrics/worker.js";
import { aroundCalls } from "../providers/wrap.js";
import { ProviderError, type Provider } from "../providers/types.js";

/** The kind of a failed provider call: a ProviderError's own, "unknown" for anything else. */
export const errorKind = (error: unknown): string => (error instanceof ProviderError ? error.kind : "unknown");

/**
 * The same provider counting every failed call (listings and GC included) in
 * peerpods_provider_errors_total; a call cancelled by its caller is no failure of the cloud.
 */
export function errorsCounted(provider: Provider): Provider {
  return aroundCalls(provider, async (_name, call, options) => {
    try {
      return await call(options);
    } catch (error) {
      if (!options?.signal?.aborted) providerErrors.inc({ provider: provider.name, kind: errorKind(error) });
      throw error;
    }
  });
}
