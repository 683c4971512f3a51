import type { Logger } from "../log/logger.js";
import type { ProviderConfig } from "./factory.js";
import { ProviderError, type CallOptions, type ClaimSpec, type Instance, type InstanceSpec, type Provider, type ProviderHealth, type Tags } from "./types.js";

export interface CurrentProviderOptions {
  /** The policy's provider block in force now. */
  config(): ProviderConfig;
  create(config: ProviderConfig): Promise<Provider>;
  log: Logger;
  /** Wait before a failed creation is tried again; it doubles with each failure in a row, up to `maxRetryMs`. */
  firstRetryMs?: number;
  maxRetryMs?: number;
  now?: () => number;
}

/** One provider made for one provider block. */
interface Made {
  key: string;
  name: string;
  config: ProviderConfig;
  created: Promise<Provider>;
  provider?: Provider;
  /** Calls running on this provider: a replaced one is closed once they are done. */
  inFlight: number;
  replaced: boolean;
  closing?: Promise<void>;
  /** Set once the creation failed: from then on it may be tried again. */
  retryAt?: number;
  failures: number;
}

/**
 * The provider the policy names, as one Provider that parts may hold for as long as they run. It is
 * made on first use and kept while its settings stay the same. When they change, the next call goes
 * to a provider made for the new settings, and the old one is closed once the calls running on it are
 * done. A creation that fails is tried again by a later call, after a backoff that doubles up to a
 * cap; until then calls fail with its error.
 */
export class CurrentProvider implements Provider {
  #made: Made | undefined;
  #closed = false;
  #refusedName: string | undefined;
  readonly #now: () => number;
  readonly #firstRetryMs: number;
  readonly #maxRetryMs: number;

  constructor(private readonly options: CurrentProviderOptions) {
    this.#now = options.now ?? Date.now;
    this.#firstRetryMs = options.firstRetryMs ?? 1000;
    this.#maxRetryMs = options.maxRetryMs ?? 60_000;
  }

  get name(): string {
    return this.#made?.name ?? this.options.config().name;
  }

  get readyPollMs(): number | undefined {
    return this.#made?.provider?.readyPollMs;
  }

  /** This provider, once the provider for the settings in force is made; rejects while it cannot be. */
  async ready(): Promise<Provider> {
    await this.#use(async () => undefined);
    return this;
  }

  create(spec: InstanceSpec, options?: CallOptions): Promise<Instance> {
    return this.#use((provider) => provider.create(spec, options));
  }

  get(id: string, options?: CallOptions): Promise<Instance | undefined> {
    return this.#use((provider) => provider.get(id, options));
  }

  list(tagFilter: Tags, options?: CallOptions): Promise<Instance[]> {
    return this.#use((provider) => provider.list(tagFilter, options));
  }

  delete(id: string, options?: CallOptions): Promise<void> {
    return this.#use((provider) => provider.delete(id, options));
  }

  claim(id: string, claim: ClaimSpec, options?: CallOptions): Promise<Instance> {
    return this.#use((provider) => {
      if (!provider.claim) throw new ProviderError("invalid", `provider ${provider.name} cannot hand a pool VM to a pod`);
      return provider.claim(id, claim, options);
    });
  }

  health(): Promise<ProviderHealth> {
    return this.#use((provider) => provider.health());
  }

  /** Closes the provider in force (at once when no call runs on it, else after the last); later calls fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const made = this.#made;
    this.#made = undefined;
    if (!made) return;
    await this.#retire(made);
    await made.closing;
  }

  async #use<R>(call: (provider: Provider) => Promise<R>): Promise<R> {
    const made = await this.#acquire();
    try {
      return await call(made.provider!);
    } finally {
      made.inFlight -= 1;
      this.#closeIfDone(made);
    }
  }

  /** The made provider for the settings in force, counted as in use in the same turn it is checked. */
  async #acquire(): Promise<Made> {
    for (;;) {
      if (this.#closed) throw new ProviderError("retryable", "the provider is closed");
      const made = this.#forSettingsInForce();
      await made.created;
      // The settings can change while the creation runs: then the newer provider is the one to use.
      if (made.replaced) continue;
      made.inFlight += 1;
      return made;
    }
  }

  #forSettingsInForce(): Made {
    const config = this.options.config();
    const made = this.#made;
    // A switch to another cloud would strand every VM of the old one (GC lists one cloud only): the
    // cloud stays the one the process started with, and only its settings follow the policy.
    if (made && config.name !== made.name) {
      if (this.#refusedName !== config.name) {
        this.#refusedName = config.name;
        this.options.log.warn({ provider: made.name, requested: config.name }, "the policy names another provider; it takes effect only when peerpods restarts");
      }
      return made.retryAt === undefined || this.#now() < made.retryAt ? made : (this.#made = this.#make(made.key, made.config, made.failures));
    }
    this.#refusedName = undefined;
    const key = JSON.stringify([config.name, config[config.name] ?? null]);
    if (made && made.key === key && (made.retryAt === undefined || this.#now() < made.retryAt)) return made;
    if (made && made.key !== key) {
      this.options.log.info({ provider: config.name, previous: made.name }, "provider settings changed; replacing the provider");
      void this.#retire(made);
    }
    this.#made = this.#make(key, config, made?.key === key ? made.failures : 0);
    return this.#made;
  }

  #make(key: string, config: ProviderConfig, failures: number): Made {
    const made: Made = { key, name: config.name, config, created: this.options.create(config), inFlight: 0, replaced: false, failures };
    made.created.then(
      (provider) => (made.provider = provider),
      (error: unknown) => {
        made.failures += 1;
        const waitMs = Math.min(this.#maxRetryMs, this.#firstRetryMs * 2 ** (made.failures - 1));
        made.retryAt = this.#now() + waitMs;
        this.options.log.error({ provider: config.name, err: error, retryInMs: waitMs }, "the provider could not be made; trying again later");
      },
    );
    return made;
  }

  async #retire(made: Made): Promise<void> {
    made.replaced = true;
    await made.created.then(
      () => this.#closeIfDone(made),
      () => undefined,
    );
  }

  #closeIfDone(made: Made): void {
    if (!made.replaced || made.closing || made.inFlight > 0 || !made.provider) return;
    made.closing = made.provider.close().catch((error: unknown) => this.options.log.warn({ provider: made.name, err: error }, "could not close a provider"));
  }
}
