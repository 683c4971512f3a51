import type { KubeConfig, KubernetesObject, ListPromise } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { startInformer } from "./informer.js";
import { objectKey } from "./keys.js";

export interface ObjectHandlers<T> {
  add?(object: T): void;
  update?(object: T): void;
  delete?(object: T): void;
}

type Verb = keyof ObjectHandlers<unknown>;

/**
 * The subscribers of one informer. Every subscriber gets every event; one that joins late first
 * gets the cache replayed as adds, synchronously, so that no event falls between the two.
 */
export class SharedHandlers<T> {
  readonly #subscribers = new Set<ObjectHandlers<T>>();

  /** `onError` hears of a handler that threw; the other subscribers still get the event. */
  constructor(private readonly onError: (error: unknown, verb: Verb, object: T) => void) {}

  /** Registers `handlers`, replays `cached` to them as adds, and returns the unsubscribe function. */
  subscribe(handlers: ObjectHandlers<T>, cached: Iterable<T>): () => void {
    // A wrapper of its own, so one handlers object may subscribe twice and unsubscribe once.
    const subscriber: ObjectHandlers<T> = { ...handlers };
    this.#subscribers.add(subscriber);
    for (const object of cached) this.#call(subscriber, "add", object);
    return () => void this.#subscribers.delete(subscriber);
  }

  dispatch(verb: Verb, object: T): void {
    // A snapshot: whoever subscribes during this event already saw the object in its replay.
    for (const subscriber of [...this.#subscribers]) {
      if (this.#subscribers.has(subscriber)) this.#call(subscriber, verb, object);
    }
  }

  get size(): number {
    return this.#subscribers.size;
  }

  #call(subscriber: ObjectHandlers<T>, verb: Verb, object: T): void {
    try {
      subscriber[verb]?.(object);
    } catch (error) {
      this.onError(error, verb, object);
    }
  }
}

/** One cluster-wide cache of a resource, shared by the parts of this process. */
export interface SharedInformer<T> {
  /** Resolves once the first list is in the cache. */
  readonly synced: Promise<void>;
  /** Every object in the cache is replayed to `handlers` as an add before this returns. */
  subscribe(handlers: ObjectHandlers<T>): () => void;
  get(name: string, namespace?: string): T | undefined;
  list(): readonly T[];
}

export interface RunningSharedInformer<T> extends SharedInformer<T> {
  stop(): Promise<void>;
}

/**
 * Drops `metadata.managedFields` (server-side apply bookkeeping, often the largest part of a small
 * object), which no part reads, before the object is kept in the cache.
 */
export function withoutManagedFields<T extends KubernetesObject>(object: T): T {
  // Assigning, not deleting, keeps the object's hidden class (V8 turns objects with deleted keys into slow dictionaries).
  if (object.metadata?.managedFields) object.metadata.managedFields = undefined;
  return object;
}

/** Starts the self-restarting informer of `path` behind a `SharedInformer`; `stop` ends it for every subscriber. */
export function startSharedInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  list: ListPromise<T>,
  log: Logger,
): RunningSharedInformer<T> {
  const handlers = new SharedHandlers<T>((error, verb, object) =>
    log.error({ err: error, path, verb, object: objectKey(object.metadata) }, "informer event handler failed"),
  );
  const watched = startInformer<T>(kc, path, list, log, (informer) => {
    // The cache holds the very object the add and update events carry, so trimming it here trims the cache.
    for (const verb of ["add", "update", "delete"] as const) informer.on(verb, (object) => handlers.dispatch(verb, withoutManagedFields(object)));
  });
  const cache = watched.informer;
  return {
    synced: watched.synced,
    subscribe: (subscriber) => handlers.subscribe(subscriber, cache.list()),
    get: (name, namespace) => cache.get(name, namespace),
    list: () => cache.list(),
    stop: () => watched.stop(),
  };
}
