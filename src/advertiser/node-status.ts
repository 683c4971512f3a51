import { PatchStrategy, setHeaderOptions, type CoreV1Api } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { advertiserPatches, nodeVmSlots } from "../metrics/scheduling.js";
import type { PolicyStore } from "../policy/store.js";
import type { TokenBucket } from "../providers/ratelimit.js";
import { desiredSlots, statusPatch, type NodeStatusObject, type Slots } from "./desired.js";

export interface NodeStatusOptions {
  api: Pick<CoreV1Api, "patchNodeStatus">;
  /** The latest node object from the informer cache; undefined once the node is gone. */
  node(name: string): NodeStatusObject | undefined;
  policy: PolicyStore;
  providerHealthy(): boolean;
  /** Every node status patch waits for a token. */
  bucket: TokenBucket;
  log: Logger;
}

const JSON_PATCH = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);

function publish(name: string, wanted: Slots | undefined): void {
  if (wanted) {
    nodeVmSlots.set({ node: name, state: "capacity" }, wanted.capacity);
    nodeVmSlots.set({ node: name, state: "allocatable" }, wanted.allocatable);
  } else {
    nodeVmSlots.remove({ node: name, state: "capacity" });
    nodeVmSlots.remove({ node: name, state: "allocatable" });
  }
}

const statusCode = (error: unknown): number | undefined => (error as { code?: number }).code;

/**
 * Brings one node's advertised VM slots to what the policy, the node's Ready condition and the
 * provider's health say, reading the node from the informer cache and patching only a difference.
 * A failed patch (a stale cache meeting a concurrent change, an apiserver restart) throws, so the
 * queue retries it against the newer cache; a node deleted meanwhile is done.
 */
export function nodeStatusSync({ api, node, policy, providerHealthy, bucket, log }: NodeStatusOptions): (name: string) => Promise<void> {
  const formerResources = new Set([policy.current.spec.extendedResourceName]);
  policy.on("change", (next) => formerResources.add(next.spec.extendedResourceName));
  return async (name) => {
    const current = node(name);
    if (!current) return publish(name, undefined);
    const resource = policy.current.spec.extendedResourceName;
    const wanted = desiredSlots(current, policy.current, providerHealthy());
    const ops = statusPatch(current, resource, formerResources, wanted);
    publish(name, wanted);
    if (ops.length === 0) return;
    await bucket.take();
    try {
      await api.patchNodeStatus({ name, body: ops }, JSON_PATCH);
      advertiserPatches.inc({ result: "ok" });
      log.info({ node: name, resource, capacity: wanted?.capacity, allocatable: wanted?.allocatable }, wanted ? "node VM slots advertised" : "node VM slots removed");
    } catch (error) {
      const code = statusCode(error);
      if (code === 404) {
        advertiserPatches.inc({ result: "gone" });
        return publish(name, undefined);
      }
      advertiserPatches.inc({ result: code === 409 || code === 422 ? "conflict" : "error" });
      throw error;
    }
  };
}
