import type { Logger } from "../log/logger.js";

/**
 * kube-scheduler retries a pod an extender turned away only on a cluster event. When pods were
 * turned away for counts (slots, limits) and capacity then comes free, the scheduler may already
 * have retried on that very event before this process's watch saw it, and the pod would wait for
 * the next event (up to 5 minutes in a quiet cluster). So after a release that follows a turn-away,
 * the node where the capacity came free gets an annotation change: a fresh event. At most one
 * write per `minIntervalMs`, and none at all while nothing was turned away.
 */
export class ReleaseNudge {
  #waiting = false;
  #timer: NodeJS.Timeout | undefined;
  #lastAt = -Infinity;

  constructor(
    private readonly touch: (node: string, at: string) => Promise<void>,
    private readonly log: Logger,
    private readonly minIntervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A pod was turned away because slots or limits were used up. */
  turnedAway(): void {
    this.#waiting = true;
  }

  /** A VM slot or a share of the limits came free on `node`. */
  released(node: string): void {
    if (!this.#waiting || this.#timer) return;
    const delay = Math.max(0, this.#lastAt + this.minIntervalMs - this.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#waiting = false;
      this.#lastAt = this.now();
      this.touch(node, new Date(this.#lastAt).toISOString()).catch((error: unknown) =>
        this.log.warn({ err: error, node }, "could not mark released capacity on the node; pending peer pods wait for the next cluster event"),
      );
    }, delay);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
