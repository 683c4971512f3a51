import { PatchStrategy, setHeaderOptions, type CoreV1Api } from "@kubernetes/client-node";
import { ANNOTATION } from "../kube/annotations.js";
import { apiStatus } from "../kube/errors.js";
import type { Logger } from "../log/logger.js";
import { advertiserPatches, nodeVmSlots } from "../metrics/scheduling.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import type { PolicyStore } from "../policy/store.js";
import type { TokenBucket } from "../providers/ratelimit.js";
import { desiredSlots, stampPatch, statusPatch, type NodeStatusObject, type Slots } from "./desired.js";

export interface NodeStatusOptions {
  api: Pick<CoreV1Api, "patchNodeStatus" | "patchNode">;
  /** The latest node object from the informer cache; undefined once the node is gone. */
  node(name: string): NodeStatusObject | undefined;
  policy: PolicyStore;
  providerHealthy(): boolean;
  /** Every node status patch waits for a token. */
  bucket: TokenBucket;
  log: Logger;
}

const JSON_PATCH = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);
const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

function publish(name: string, wanted: Slots | undefined): void {
  if (wanted) {
    nodeVmSlots.set({ node: name, state: "capacity" }, wanted.capacity);
    nodeVmSlots.set({ node: name, state: "allocatable" }, wanted.allocatable);
  } else {
    nodeVmSlots.remove({ node: name, state: "capacity" });
    nodeVmSlots.remove({ node: name, state: "allocatable" });
  }
}

export interface NodeStatusSync {
  /** Brings one node, by name, to the advertisement it should carry. */
  sync(name: string): Promise<void>;
  close(): void;
}

/**
 * Brings one node's advertised VM slots to what the policy, the node's Ready condition and the
 * provider's health say, reading the node from the informer cache and patching only a difference.
 * Then it stamps the policy generation and the resource name on the node: kube-scheduler retries
 * pods an extender turned away only on a cluster event (a relaxed limit is otherwise none), and the
 * name lets a later run remove a resource the policy has since renamed.
 * A failed patch (a stale cache meeting a concurrent change, an apiserver restart) throws, so the
 * queue retries it against the newer cache; a node deleted meanwhile is done.
 */
export function nodeStatusSync({ api, node, policy, providerHealthy, bucket, log }: NodeStatusOptions): NodeStatusSync {
  const formerResources = new Set([policy.current.spec.extendedResourceName]);
  const remember = (next: CompiledPolicy): void => void formerResources.add(next.spec.extendedResourceName);
  policy.on("change", remember);
  const patch = async (name: string, call: () => Promise<unknown>): Promise<boolean> => {
    await bucket.take();
    try {
      await call();
      advertiserPatches.inc({ result: "ok" });
      return true;
    } catch (error) {
      const code = apiStatus(error);
      if (code === 404) {
        advertiserPatches.inc({ result: "gone" });
        publish(name, undefined);
        return false;
      }
      advertiserPatches.inc({ result: code === 409 || code === 422 ? "conflict" : "error" });
      throw error;
    }
  };
  const sync = async (name: string): Promise<void> => {
    const current = node(name);
    if (!current) return publish(name, undefined);
    const { generation, spec } = policy.current;
    const resource = spec.extendedResourceName;
    const wanted = desiredSlots(current, policy.current, providerHealthy());
    publish(name, wanted);
    const previous = current.metadata?.annotations?.[ANNOTATION.advertisedResource];
    const former = previous && !formerResources.has(previous) ? [...formerResources, previous] : formerResources;
    const ops = statusPatch(current, resource, former, wanted);
    if (ops.length > 0) {
      if (!(await patch(name, () => api.patchNodeStatus({ name, body: ops }, JSON_PATCH)))) return;
      log.info({ node: name, resource, capacity: wanted?.capacity, allocatable: wanted?.allocatable }, wanted ? "node VM slots advertised" : "node VM slots removed");
    }
    const annotations = stampPatch(current, wanted, generation, resource);
    if (annotations) await patch(name, () => api.patchNode({ name, body: { metadata: { annotations } } }, MERGE_PATCH));
  };
  return { sync, close: () => void policy.off("change", remember) };
}
