import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { delay, eitherSignal } from "../cancel.js";
import { TokenBucket } from "../ratelimit.js";
import { parseProviderSettings } from "../settings.js";
import { claimCheck, claimedTags } from "../claim.js";
import { ProviderError, type CallOptions, type ClaimSpec, type Instance, type InstanceSpec, type Provider, type ProviderHealth, type ProviderOptions, type Tags } from "../types.js";
import { Inventory, type SimRecord } from "./inventory.js";
import { sampleLatency, seededRandom, type Random } from "./random.js";
import { simSettingsSchema, type SimSettings } from "./settings.js";

/**
 * A simulated cloud for scale and fault tests (never a default): configurable latencies, errors,
 * throttling, a capacity limit, and creates whose response is lost after the instance was made.
 */
export class SimProvider implements Provider {
  readonly name = "sim";
  readonly #random: Random;
  readonly #throttle: TokenBucket | undefined;
  /** Aborted by close: every call still waiting ends. */
  readonly #closing = new AbortController();
  #nextAddress = 1;

  constructor(
    readonly settings: SimSettings,
    private readonly inventory: Inventory,
  ) {
    this.#random = settings.seed === undefined ? Math.random : seededRandom(settings.seed);
    this.#throttle = settings.throttle && new TokenBucket(settings.throttle.ratePerSecond, settings.throttle.burst);
    this.#nextAddress = inventory.records.size + 1;
  }

  async create(spec: InstanceSpec, options?: CallOptions): Promise<Instance> {
    const signal = this.#signal(options);
    await this.#admit("create", signal);
    const existing = this.#byName(spec.name);
    if (existing) {
      await this.#sleep(this.settings.createMs, signal);
      return toInstance(existing);
    }
    const { capacity } = this.settings;
    if (capacity !== undefined && this.inventory.records.size >= capacity) {
      throw new ProviderError("quota", `instance limit of ${capacity} reached`);
    }
    const createdAt = Date.now();
    const createMs = sampleLatency(this.settings.createMs, this.#random);
    const record: SimRecord = {
      id: `sim-${randomBytes(8).toString("hex")}`,
      name: spec.name,
      instanceType: spec.instanceType.name,
      tags: { ...spec.tags },
      address: this.#address(),
      createdAt,
      readyAt: createdAt + createMs + sampleLatency(this.settings.readyMs, this.#random),
      ...(spec.zone ? { zone: spec.zone } : {}),
    };
    this.inventory.records.set(record.id, record);
    await this.inventory.persist();
    await this.#sleepMs(createMs, signal);
    if (this.#random() < this.settings.crashRate) {
      throw new ProviderError("retryable", `connection reset before the response of creating ${spec.name} arrived`);
    }
    return toInstance(record);
  }

  async get(id: string, options?: CallOptions): Promise<Instance | undefined> {
    await this.#admit("get", this.#signal(options));
    const record = this.inventory.records.get(id);
    return record && toInstance(record);
  }

  async list(tagFilter: Tags, options?: CallOptions): Promise<Instance[]> {
    await this.#admit("list", this.#signal(options));
    const wanted = Object.entries(tagFilter);
    return [...this.inventory.records.values()].filter((r) => wanted.every(([k, v]) => r.tags[k] === v)).map(toInstance);
  }

  async delete(id: string, options?: CallOptions): Promise<void> {
    const signal = this.#signal(options);
    await this.#admit("delete", signal);
    if (!this.inventory.records.has(id)) return;
    await this.#sleep(this.settings.deleteMs, signal);
    if (this.inventory.records.delete(id)) await this.inventory.persist();
  }

  async claim(id: string, claim: ClaimSpec, options?: CallOptions): Promise<Instance> {
    const signal = this.#signal(options);
    await this.#admit("claim", signal);
    const record = this.inventory.records.get(id);
    const { instance, owned } = claimCheck(id, record && toInstance(record), claim);
    if (owned || !record) return instance; // claimCheck throws for a missing record
    await this.#sleep(this.settings.claimMs, signal);
    record.name = claim.name;
    record.userData = claim.userData;
    record.tags = claimedTags(record.tags, claim.tags);
    await this.inventory.persist();
    return toInstance(record);
  }

  async health(): Promise<ProviderHealth> {
    if (!this.settings.healthy) return { healthy: false, message: "sim: configured unhealthy" };
    if (this.settings.unhealthyFile) {
      const reason = await readFile(this.settings.unhealthyFile, "utf8").then(
        (text) => text.trim() || `sim: ${this.settings.unhealthyFile} exists`,
        () => undefined,
      );
      if (reason !== undefined) return { healthy: false, message: reason };
    }
    return { healthy: true };
  }

  async close(): Promise<void> {
    this.#closing.abort(new Error("sim: provider closed"));
    await this.inventory.settled();
  }

  /** The throttle and the random failures every API call may meet, after catching up with outside edits. */
  async #admit(call: "create" | "get" | "list" | "delete" | "claim", signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await this.inventory.sync();
    if (this.settings.unhealthyFailsCalls) {
      const health = await this.health();
      if (!health.healthy) throw new ProviderError("retryable", `sim: ${call} failed: service unavailable (${health.message})`);
    }
    if (this.#throttle && !this.#throttle.tryTake()) throw new ProviderError("retryable", `sim: ${call} throttled (rate limit exceeded)`);
    if (call !== "get" && call !== "list" && this.#random() < this.settings.errorRate) {
      throw new ProviderError("retryable", `sim: ${call} failed with a simulated internal error`);
    }
  }

  #byName(name: string): SimRecord | undefined {
    for (const record of this.inventory.records.values()) if (record.name === name) return record;
    return undefined;
  }

  #address(): string {
    const n = this.#nextAddress++;
    return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  }

  /** The call's own signal, and the provider's closing. */
  #signal(options: CallOptions | undefined): AbortSignal {
    return eitherSignal(this.#closing.signal, options?.signal);
  }

  #sleep(latency: SimSettings["createMs"], signal: AbortSignal): Promise<void> {
    return this.#sleepMs(sampleLatency(latency, this.#random), signal);
  }

  #sleepMs(ms: number, signal: AbortSignal): Promise<void> {
    return ms <= 0 ? Promise.resolve() : delay(ms, signal);
  }
}

function toInstance(record: SimRecord): Instance {
  const ready = Date.now() >= record.readyAt;
  return {
    id: record.id,
    name: record.name,
    state: ready ? "running" : "pending",
    ready,
    instanceType: record.instanceType,
    tags: { ...record.tags },
    createdAt: new Date(record.createdAt),
    privateIp: record.address,
    ...(record.zone ? { zone: record.zone } : {}),
  };
}

export async function createProvider(settings: Record<string, unknown> | undefined, options: ProviderOptions): Promise<Provider> {
  const parsed = parseProviderSettings("sim", simSettingsSchema, settings);
  const file = parsed.inventoryFile === null ? undefined : (parsed.inventoryFile ?? join(options.stateDir, `sim-${options.clusterId}.json`));
  const inventory = await Inventory.open(file);
  options.log.info({ inventoryFile: file ?? null, instances: inventory.records.size }, "simulated cloud ready");
  return new SimProvider(parsed, inventory);
}
