import type { Logger } from "../log/logger.js";

/**
 * A level-based work queue: a key is queued at most once however often it is added, work runs one
 * key at a time, and a key whose work fails comes back after a per-key exponential backoff.
 */
export class KeyedQueue {
  readonly #pending = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #retries = new Map<string, NodeJS.Timeout>();
  #draining: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly work: (key: string) => Promise<void>,
    private readonly log: Logger,
    private readonly baseDelayMs = 250,
    private readonly maxDelayMs = 30_000,
  ) {}

  add(key: string): void {
    if (this.#stopped) return;
    clearTimeout(this.#retries.get(key));
    this.#retries.delete(key);
    this.#pending.add(key);
    this.#draining ??= this.#drain().finally(() => (this.#draining = undefined));
  }

  /** Resolves when nothing is queued or running (retries waiting on their backoff do not count). */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#retries.forEach((timer) => clearTimeout(timer));
    this.#retries.clear();
    this.#pending.clear();
    await this.idle();
  }

  async #drain(): Promise<void> {
    for (const key of this.#pending) {
      this.#pending.delete(key);
      if (this.#stopped) return;
      try {
        await this.work(key);
        this.#failures.delete(key);
      } catch (error) {
        const failures = (this.#failures.get(key) ?? 0) + 1;
        this.#failures.set(key, failures);
        const delay = Math.min(this.baseDelayMs * 2 ** (failures - 1), this.maxDelayMs);
        this.log.warn({ err: error, key, failures, retryInMs: delay }, "work failed; retrying");
        this.#retries.set(key, setTimeout(() => this.add(key), delay));
      }
    }
  }
}
