import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../kube/annotations.js";
import { peerPodRecords, type PeerPodRecords } from "../kube/peerpod-records.js";

const strategicMergePatch = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);

/** The worker's writes to the cluster: PeerPod records and the pod's vm-ready condition. */
export interface ClusterWrites extends PeerPodRecords {
  setPodCondition(pod: V1Pod, status: "True" | "False", reason: string, message: string): Promise<void>;
}

export function clusterWrites(kc: KubeConfig): ClusterWrites {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    ...peerPodRecords(kc),
    async setPodCondition(pod, status, reason, message) {
      const condition = { type: VM_READY_CONDITION, status, reason, message, lastTransitionTime: new Date().toISOString(), lastProbeTime: null };
      const body = { metadata: { uid: pod.metadata!.uid }, status: { conditions: [condition] } };
      await core.patchNamespacedPodStatus({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body }, strategicMergePatch);
    },
  };
}
