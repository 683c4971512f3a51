import { hasLimits, limitExceeded, type Limits, type Usage } from "../policy/limits.js";
import type { InstanceType } from "../policy/schema.js";
import { objectKey } from "../kube/keys.js";
import type { PeerPod } from "../kube/peerpod.js";

export type TakeResult =
  | { ok: true }
  /** `first`: the pod was not waiting before, so the wait is news worth an Event. */
  | { ok: false; reason: string; first: boolean };

/**
 * The worker's hard stop at the policy's cluster-wide limits. The extender already turns pods away at
 * the limits, but its reservations are per replica and a lowered limit does not unbind pods; the worker
 * is the one writer of VMs, so counting here holds across replicas. A pod holds room once its record
 * names a VM, or from the moment its create begins until the record does.
 */
export class VmBudget {
  /** Pod keys whose create has begun, with the vCPUs they hold, until their record names the VM. */
  readonly #starting = new Map<string, number>();
  readonly #waiting = new Set<string>();

  constructor(
    private readonly records: () => readonly PeerPod[],
    private readonly vcpusOf: (instanceType: string) => number,
  ) {}

  /** Room for one VM of `type` for the pod `key`; without room the pod waits for `wake`. */
  take(key: string, type: InstanceType, limits: Limits): TakeResult {
    if (!hasLimits(limits)) return { ok: true };
    const reason = limitExceeded(limits, this.usage(key), type);
    if (reason) {
      const first = !this.#waiting.has(key);
      this.#waiting.add(key);
      return { ok: false, reason, first };
    }
    this.#waiting.delete(key);
    this.#starting.set(key, type.vcpus);
    return { ok: true };
  }

  /** The pod's create failed or the pod is gone: what it held or waited for is dropped. */
  release(key: string): void {
    this.#starting.delete(key);
    this.#waiting.delete(key);
  }

  /** Pods waiting for room, to be looked at again when a VM goes or the limits change. */
  waiting(): string[] {
    return [...this.#waiting];
  }

  /** Every pod's VM but `exceptKey`'s: recorded VMs plus creates begun that no record names yet. */
  usage(exceptKey: string): Usage {
    const used: Usage = { vms: 0, vcpus: 0 };
    const counted = new Set<string>([exceptKey]);
    for (const record of this.records()) {
      const key = objectKey(record.metadata);
      if (counted.has(key)) continue;
      // once the record names the VM it counts from there, and the create's own hold is done
      if (record.status?.instanceID) this.#starting.delete(key);
      else if (!this.#starting.has(key)) continue;
      counted.add(key);
      used.vms += 1;
      used.vcpus += this.vcpusOf(record.spec.instanceType);
    }
    for (const [key, vcpus] of this.#starting) {
      if (counted.has(key)) continue;
      used.vms += 1;
      used.vcpus += vcpus;
    }
    return used;
  }
}
