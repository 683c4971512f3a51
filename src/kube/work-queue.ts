/** What a handler asks of the queue: nothing (done), or to look at the key again after a while. */
export type HandlerResult = { requeueAfterMs: number } | void;

export interface WorkQueueOptions {
  concurrency: number;
  /** First retry delay after a failure; doubles per failure in a row, up to `maxBackoffMs`. */
  baseBackoffMs: number;
  maxBackoffMs: number;
  /** Spread of each backoff delay: 0.2 draws it from ±20 % around the nominal value. */
  jitter: number;
  random?: () => number;
  onError?: (key: string, error: unknown, failures: number, retryInMs: number) => void;
}

/**
 * A keyed work queue in the style of client-go's: a key is queued at most once; a key added while it
 * is being handled is handled once more afterwards (never twice at the same time); failures are retried
 * per key with exponential backoff and jitter; at most `concurrency` keys are handled at once.
 */
export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #delayed = new Map<string, { timer: NodeJS.Timeout; at: number }>();
  readonly #failures = new Map<string, number>();
  readonly #random: () => number;
  readonly #idle: (() => void)[] = [];
  #started = false;
  #stopped = false;

  constructor(
    private readonly handler: (key: string) => Promise<HandlerResult>,
    private readonly options: WorkQueueOptions,
  ) {
    this.#random = options.random ?? Math.random;
  }

  /** Keys waiting to be handled (not counting those waiting out a delay). */
  get depth(): number {
    return this.#queue.length;
  }

  /** Keys waiting out a backoff or a requeue delay. */
  get delayed(): number {
    return this.#delayed.size;
  }

  get active(): number {
    return this.#processing.size;
  }

  /** Begins handling keys; keys added before are kept until then. */
  start(): void {
    this.#started = true;
    this.#pump();
  }

  /** Queues the key; `first` puts it ahead of the others (work already under way that can now finish). */
  add(key: string, first = false): void {
    if (this.#stopped) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) {
      if (!first) return;
      this.#queue.splice(this.#queue.indexOf(key), 1);
    }
    this.#queued.add(key);
    if (first) this.#queue.unshift(key);
    else this.#queue.push(key);
    this.#pump();
  }

  /** Adds the key after `ms`; an earlier pending add of the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    this.#delayed.set(key, { timer, at });
  }

  /** Queues now every key that waits out a delay (after the cause of a run of failures went away). */
  retryDelayedNow(): void {
    const keys = [...this.#delayed.keys()];
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    for (const key of keys) this.add(key);
  }

  /** The delay before retry number `failures` (1 = first failure). */
  backoffMs(failures: number): number {
    const { baseBackoffMs, maxBackoffMs, jitter } = this.options;
    const nominal = Math.min(maxBackoffMs, baseBackoffMs * 2 ** Math.min(failures - 1, 30));
    return Math.round(nominal * (1 - jitter + 2 * jitter * this.#random()));
  }

  /** Stops taking keys; resolves when the keys in hand are done or after `graceMs`, whichever is first. */
  async stop(graceMs: number): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#queue.length = 0;
    this.#queued.clear();
    if (this.#processing.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#idle.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
  }

  #pump(): void {
    while (this.#started && !this.#stopped && this.#processing.size < this.options.concurrency && this.#queue.length > 0) {
      const key = this.#queue.shift()!;
      this.#queued.delete(key);
      this.#processing.add(key);
      void this.#handle(key);
    }
  }

  async #handle(key: string): Promise<void> {
    try {
      const result = await this.handler(key);
      this.#failures.delete(key);
      if (result) this.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      const retryInMs = this.backoffMs(failures);
      this.options.onError?.(key, error, failures, retryInMs);
      this.addAfter(key, retryInMs);
    } finally {
      this.#processing.delete(key);
      if (this.#dirty.delete(key)) this.add(key);
      if (this.#processing.size === 0) this.#idle.splice(0).forEach((resolve) => resolve());
      this.#pump();
    }
  }
}
