import type { V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../kube/annotations.js";
import { objectKey } from "../kube/keys.js";
import type { BindTimes } from "./lifecycle/step.js";

/**
 * What the worker makes of the pod cache's events: which of them may call for an action (status
 * churn does not), and when this replica saw each pod go from unbound to bound.
 */
export class PodChanges implements BindTimes {
  readonly #signatures = new Map<string, string>();
  readonly #seenUnbound = new Set<string>();
  readonly #boundSeen = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Pods seen, for the start-up log line. */
  get size(): number {
    return this.#signatures.size;
  }

  /** The pod's key when the event may call for an action, else undefined. Pods of no RuntimeClass are never peer pods. */
  changed(pod: V1Pod, deleted: boolean): string | undefined {
    if (!pod.spec?.runtimeClassName) return undefined;
    const key = objectKey(pod.metadata);
    if (deleted) {
      this.#signatures.delete(key);
      this.#boundSeen.delete(key);
      this.#seenUnbound.delete(key);
      return key;
    }
    if (!pod.spec.nodeName) this.#seenUnbound.add(key);
    else if (this.#seenUnbound.delete(key)) this.#boundSeen.set(key, this.now());
    const signature = podSignature(pod);
    if (this.#signatures.get(key) === signature) return undefined;
    this.#signatures.set(key, signature);
    return key;
  }

  /** When the pod was bound: as this replica saw it happen, else by its PodScheduled condition, else now. */
  boundAt(key: string, pod: V1Pod): number {
    return this.#boundSeen.get(key) ?? scheduledAt(pod) ?? this.now();
  }
}

/** The fields whose change may call for an action. */
function podSignature(pod: V1Pod): string {
  const vmReady = pod.status?.conditions?.find((c) => c.type === VM_READY_CONDITION)?.status ?? "";
  return [pod.metadata?.uid, pod.spec?.nodeName ?? "", pod.metadata?.deletionTimestamp ? "deleting" : "", pod.status?.phase ?? "", vmReady, pod.spec?.runtimeClassName].join("|");
}

function scheduledAt(pod: V1Pod): number | undefined {
  const time = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "True")?.lastTransitionTime;
  return time ? new Date(time).getTime() : undefined;
}
