import type { Provider } from "./types.js";

/** Runs one cloud API call (`name` is the method) and returns its result. */
export type AroundCall = <R>(name: string, call: () => Promise<R>) => Promise<R>;

/** The same provider with `around` wrapped about every cloud API call; health and close pass straight through. */
export function aroundCalls(provider: Provider, around: AroundCall): Provider {
  const wrap =
    <A extends unknown[], R>(name: string, call: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      around(name, () => call.apply(provider, args));
  return {
    // read through, for a provider whose name and polling change (CurrentProvider)
    get name() {
      return provider.name;
    },
    get readyPollMs() {
      return provider.readyPollMs;
    },
    create: wrap("create", provider.create),
    get: wrap("get", provider.get),
    list: wrap("list", provider.list),
    delete: wrap("delete", provider.delete),
    ...(provider.claim ? { claim: wrap("claim", provider.claim) } : {}),
    health: () => provider.health(),
    close: () => provider.close(),
  };
}
