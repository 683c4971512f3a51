import type { V1Pod } from "@kubernetes/client-node";
import { objectKey } from "../kube/keys.js";
import type { PeerPod } from "../kube/peerpod.js";
import type { Logger } from "../log/logger.js";
import { gcDeleted, vmOperations } from "../metrics/worker.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { TAG, type Provider } from "../providers/types.js";
import { findLeaks, livePods, recordsToRevisit } from "./gc.js";
import type { Revisits } from "./reconcile.js";

export interface GarbageCollectorOptions {
  provider: Provider;
  clusterId: string;
  policy: () => CompiledPolicy;
  /** The pod and PeerPod caches. */
  pods: () => readonly V1Pod[];
  records: () => readonly PeerPod[];
  /** A VM younger than this is never a leak: its pod may not have reached the cache yet. */
  graceMs: number;
  intervalMs: number;
  /** Hands a pod key to the reconcile queue. */
  revisit: (key: string) => void;
  log: Logger;
}

/**
 * The worker's garbage collection, as its own loop: every interval (and at once when asked) one
 * listing of the cluster's VMs deletes those no live pod owns, and sends back to the queue the
 * records whose pod is gone or whose VM the listing did not show (those must be verified, not
 * taken on trust). One run at a time.
 */
export class GarbageCollector implements Revisits {
  /** Keys whose VM the last listing did not show. */
  readonly #verify = new Set<string>();
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(private readonly options: GarbageCollectorOptions) {}

  /** Runs now and then every interval. */
  start(): void {
    this.run();
    this.#timer = setInterval(() => this.run(), this.options.intervalMs);
  }

  /** Runs now unless a run is under way. */
  run(): void {
    if (this.#stopped) return;
    this.#running ??= this.#collect().finally(() => (this.#running = undefined));
  }

  mustVerify(key: string): boolean {
    return this.#verify.delete(key);
  }

  /** No run starts any more; resolves when the one under way is done (cancelled by the provider's signal, if it is to end soon). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  async #collect(): Promise<void> {
    const { provider, clusterId, log } = this.options;
    try {
      const instances = await provider.list({ [TAG.cluster]: clusterId });
      const live = livePods(this.options.pods(), this.options.policy());
      for (const record of recordsToRevisit(this.options.records(), live.uids, new Set(instances.map((i) => i.id)))) {
        const key = objectKey(record.metadata);
        this.#verify.add(key);
        this.options.revisit(key);
      }
      for (const leak of findLeaks(instances, live, Date.now(), this.options.graceMs)) {
        await provider.delete(leak.id);
        gcDeleted.inc();
        vmOperations.inc({ op: "gc", result: "ok" });
        const owner = `${leak.tags[TAG.namespace] ?? "?"}/${leak.tags[TAG.podName] ?? "?"}`;
        log.warn({ instanceId: leak.id, podUid: leak.tags[TAG.podUid], pod: owner, createdAt: leak.createdAt }, "leaked VM deleted: no live pod owns it");
      }
    } catch (error) {
      if (this.#stopped) return;
      vmOperations.inc({ op: "gc", result: "error" });
      log.warn({ err: error }, "garbage collection failed; trying again next interval");
    }
  }
}
