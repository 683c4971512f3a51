import { EventEmitter } from "node:events";
import type { Logger } from "../log/logger.js";
import type { Provider } from "./types.js";

/**
 * Polls the provider's health. The first reading counts at once (a replica that starts during an
 * outage must not advertise slots first); after that `healthy` flips only after `threshold` results
 * in a row agree, so one slow call does not empty every node's allocatable. Emits `change` on each flip.
 */
export class ProviderHealthMonitor extends EventEmitter<{ change: [boolean, string | undefined] }> {
  #healthy = true;
  #message: string | undefined;
  #streak = 0;
  #timer: NodeJS.Timeout | undefined;
  #read = false;
  #markRead: () => void = () => undefined;
  /** Settles once the first check has answered (or failed). */
  readonly firstReading = new Promise<void>((resolve) => (this.#markRead = resolve));

  constructor(
    private readonly provider: () => Promise<Provider>,
    private readonly log: Logger,
    private readonly intervalMs = 5000,
    private readonly threshold = 2,
    private readonly timeoutMs = 5000,
  ) {
    super();
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  get message(): string | undefined {
    return this.#message;
  }

  start(): void {
    const tick = async (): Promise<void> => {
      await this.check();
      if (this.#timer !== undefined) this.#timer = setTimeout(() => void tick(), this.intervalMs);
    };
    this.#timer = setTimeout(() => void tick(), 0);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One health check; exposed so tests and callers can force a fresh reading. */
  async check(): Promise<void> {
    let healthy: boolean;
    let message: string | undefined;
    try {
      const provider = await this.provider();
      const result = await withTimeout(provider.health(), this.timeoutMs);
      healthy = result.healthy;
      message = result.message;
    } catch (error) {
      healthy = false;
      message = (error as Error).message;
    }
    const first = !this.#read;
    this.#read = true;
    this.#markRead();
    if (healthy === this.#healthy) {
      this.#streak = 0;
      this.#message = message;
      return;
    }
    this.#streak += 1;
    if (!first && this.#streak < this.threshold) return;
    this.#streak = 0;
    this.#healthy = healthy;
    this.#message = message;
    this.log.warn({ healthy, reason: message }, healthy ? "provider healthy again" : "provider unhealthy");
    this.emit("change", healthy, message);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`health check timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
