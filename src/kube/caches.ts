import { CoreV1Api, type KubeConfig, type V1Node, type V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { startSharedInformer, type RunningSharedInformer, type SharedInformer } from "./shared-informer.js";

/** The process's caches of every pod and every node, each started on first use and shared by all parts. */
export interface ClusterCaches {
  pods(): SharedInformer<V1Pod>;
  nodes(): SharedInformer<V1Node>;
  /** Stops the informers started so far; call it after the parts that subscribed have stopped. */
  stop(): Promise<void>;
}

export function clusterCaches(kube: () => KubeConfig, log: Logger): ClusterCaches {
  let core: CoreV1Api | undefined;
  const api = (): CoreV1Api => (core ??= kube().makeApiClient(CoreV1Api));
  let pods: RunningSharedInformer<V1Pod> | undefined;
  let nodes: RunningSharedInformer<V1Node> | undefined;
  return {
    pods: () => (pods ??= startSharedInformer<V1Pod>(kube(), "/api/v1/pods", () => api().listPodForAllNamespaces(), log)),
    nodes: () => (nodes ??= startSharedInformer<V1Node>(kube(), "/api/v1/nodes", () => api().listNode(), log)),
    stop: async () => {
      await Promise.all([pods?.stop(), nodes?.stop()]);
    },
  };
}
