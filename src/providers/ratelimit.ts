import type { Provider } from "./types.js";
import { delay } from "./cancel.js";
import { aroundCalls } from "./wrap.js";

/** A token bucket: `rate` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  #refill(): void {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
  }

  /** Takes a token if one is there. */
  tryTake(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until a token will be there (0 when one is). */
  waitMs(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.rate) * 1000);
  }

  /** Waits for a token, then takes it; an aborted `signal` ends the wait with its reason. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const wait = this.waitMs();
      if (wait === 0) {
        this.#tokens -= 1;
        return;
      }
      await delay(wait, signal);
    }
  }
}

/** The same provider with every cloud API call waiting for a token, so a burst of pods cannot get the account throttled. */
export function rateLimited(provider: Provider, bucket: TokenBucket): Provider {
  return aroundCalls(provider, async (_name, call, options) => {
    await bucket.take(options?.signal);
    return call(options);
  });
}
