import type { Provider } from "./types.js";
import { aroundCalls } from "./wrap.js";

/**
 * `work`, or the signal's reason as soon as `signal` is aborted, whichever comes first. The work
 * itself goes on: this is for waits on something shared (a probe, a queue) that other callers still need.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Waits `ms`; an aborted `signal` ends the wait with its reason. */
export function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A signal of the call's own, aborted when the callee's (a provider closing) or the caller's is; one
 * per call, so the listeners of many calls do not pile up on a long-lived signal.
 */
export function eitherSignal(own: AbortSignal, caller: AbortSignal | undefined): AbortSignal {
  return AbortSignal.any(caller ? [own, caller] : [own]);
}

/** The same provider with every cloud call also cancelled by `signal` (a part stopping cancels all it has in flight). */
export function cancelledBy(provider: Provider, signal: AbortSignal): Provider {
  return aroundCalls(provider, (_name, call, options) => call({ ...options, signal: eitherSignal(signal, options?.signal) }));
}
