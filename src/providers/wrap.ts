import type { CallOptions, Provider } from "./types.js";

/**
 * Runs one cloud API call (`name` is the method): `call` makes it with the options it is given,
 * `options` are the caller's (a wrapper may pass others on, e.g. with its own signal).
 */
export type AroundCall = <R>(name: string, call: (options: CallOptions | undefined) => Promise<R>, options: CallOptions | undefined) => Promise<R>;

/** The same provider with `around` wrapped about every cloud API call; health and close pass straight through. */
export function aroundCalls(provider: Provider, around: AroundCall): Provider {
  const { claim } = provider;
  return {
    // read through, for a provider whose name and polling change (CurrentProvider)
    get name() {
      return provider.name;
    },
    get readyPollMs() {
      return provider.readyPollMs;
    },
    create: (spec, options) => around("create", (passed) => provider.create(spec, passed), options),
    get: (id, options) => around("get", (passed) => provider.get(id, passed), options),
    list: (tags, options) => around("list", (passed) => provider.list(tags, passed), options),
    delete: (id, options) => around("delete", (passed) => provider.delete(id, passed), options),
    ...(claim ? { claim: (id, spec, options) => around("claim", (passed) => claim.call(provider, id, spec, passed), options) } : {}),
    health: () => provider.health(),
    close: () => provider.close(),
  };
}
