import type { Logger } from "../log/logger.js";
import { TAG, type Instance, type Provider } from "../providers/types.js";
import type { ReadyWaits } from "./reconcile.js";

/**
 * Watches booting VMs with one provider listing per interval for all of them (not one call per VM),
 * and hands a pod back to the queue as soon as its VM is ready, gone, or no longer booting, keeping
 * what the listing showed of the VM for the reconcile (`take`). The interval is the provider's
 * `readyPollMs` when it names one, else `intervalMs`.
 */
export class ReadyWatcher implements ReadyWaits {
  readonly #waiting = new Map<string, string>();
  readonly #listed = new Map<string, Instance | undefined>();
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly provider: Provider,
    private readonly clusterId: string,
    intervalMs: number,
    private readonly changed: (key: string) => void,
    private readonly log: Logger,
  ) {
    this.#intervalMs = provider.readyPollMs ?? intervalMs;
  }

  wait(key: string, instanceId: string): void {
    this.#waiting.set(key, instanceId);
    this.#schedule();
  }

  take(key: string): Instance | undefined {
    const instance = this.#listed.get(key);
    this.#listed.delete(key);
    return instance;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#timer || this.#stopped || this.#waiting.size === 0) return;
    this.#timer = setTimeout(() => void this.#poll(), this.#intervalMs);
  }

  async #poll(): Promise<void> {
    try {
      const instances = await this.provider.list({ [TAG.cluster]: this.clusterId });
      const byId = new Map(instances.map((instance) => [instance.id, instance]));
      for (const [key, id] of this.#waiting) {
        const instance = byId.get(id);
        if (instance && !instance.ready && instance.state === "pending") continue;
        this.#waiting.delete(key);
        this.#listed.set(key, instance);
        this.changed(key);
      }
    } catch (error) {
      if (!this.#stopped) this.log.warn({ err: error }, "could not list instances to check readiness");
    }
    this.#timer = undefined;
    this.#schedule();
  }
}
