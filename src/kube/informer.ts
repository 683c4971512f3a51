import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ListPromise } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";

export interface WatchedInformer<T extends KubernetesObject> {
  informer: Informer<T>;
  /** Resolves once the first list has been delivered. */
  synced: Promise<void>;
  stop(): Promise<void>;
}

/**
 * An informer that restarts itself after errors (apiserver restarts, expired watches),
 * with capped exponential backoff. Handlers are attached by `attach` before the first list.
 */
export function startInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  list: ListPromise<T>,
  log: Logger,
  attach: (informer: Informer<T>) => void,
  labelSelector?: string,
): WatchedInformer<T> {
  const informer = makeInformer<T>(kc, path, list, labelSelector);
  attach(informer);
  let stopped = false;
  let delay = 250;
  let timer: NodeJS.Timeout | undefined;
  const restart = (error: unknown): void => {
    if (stopped) return;
    log.warn({ err: error, path, retryInMs: delay }, "watch failed; restarting");
    timer = setTimeout(() => {
      informer.start().then(() => (delay = 250), restart);
    }, delay);
    delay = Math.min(delay * 2, 30_000);
  };
  informer.on("error", restart);
  const synced = informer.start().catch((error: unknown) => {
    restart(error);
    return new Promise<void>((resolve) => informer.on("connect", () => resolve()));
  });
  return {
    informer,
    synced,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await informer.stop();
    },
  };
}
