import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ListPromise, type ObjectCache } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";

export interface WatchedInformer<T extends KubernetesObject> {
  /** client-node's ListWatch: the informer and its object cache. */
  informer: Informer<T> & ObjectCache<T>;
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
  // client-node's start() resolves even when its list failed (it reports that as an error event),
  // so `synced` waits for a list that returned, or a cold cache would look like deleted objects.
  let listed = false;
  const informer = makeInformer<T>(kc, path, async () => {
    const result = await list();
    listed = true;
    return result;
  }, labelSelector);
  attach(informer);
  let markSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));
  let stopped = false;
  let delay = 250;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  const start = (): void => {
    const failuresBefore = failures;
    informer.start().then(() => {
      if (listed) markSynced();
      if (failures === failuresBefore) delay = 250;
    }, restart);
  };
  const restart = (error: unknown): void => {
    if (stopped) return;
    failures++;
    log.warn({ err: error, path, retryInMs: delay }, "watch failed; restarting");
    timer = setTimeout(start, delay);
    delay = Math.min(delay * 2, 30_000);
  };
  informer.on("error", restart);
  start();
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
