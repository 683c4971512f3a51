import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../kube/annotations.js";
import { apiStatus } from "../kube/errors.js";
import {
  PEERPOD_API_VERSION,
  PEERPOD_GROUP,
  PEERPOD_KIND,
  PEERPOD_PLURAL,
  PEERPOD_VERSION,
  VM_FINALIZER,
  type PeerPod,
  type PeerPodSpec,
  type PeerPodStatus,
} from "./peerpod.js";

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const strategicMergePatch = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);

/** The worker's writes to the cluster: PeerPod records and the pod's vm-ready condition. */
export interface ClusterWrites {
  createRecord(pod: V1Pod, spec: PeerPodSpec): Promise<PeerPod>;
  getRecord(namespace: string, name: string): Promise<PeerPod | undefined>;
  patchRecordStatus(record: PeerPod, status: PeerPodStatus): Promise<PeerPod>;
  patchRecordSpec(record: PeerPod, spec: Partial<PeerPodSpec>): Promise<PeerPod>;
  /** Drops the finalizer and deletes the record; a record already gone is fine. */
  releaseRecord(record: PeerPod): Promise<void>;
  setPodCondition(pod: V1Pod, status: "True" | "False", reason: string, message: string): Promise<void>;
}

export function clusterWrites(kc: KubeConfig): ClusterWrites {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const at = (record: PeerPod) => ({
    group: PEERPOD_GROUP,
    version: PEERPOD_VERSION,
    plural: PEERPOD_PLURAL,
    namespace: record.metadata.namespace,
    name: record.metadata.name,
  });
  const ignoreGone = (error: unknown): void => {
    if (apiStatus(error) !== 404) throw error;
  };
  return {
    async createRecord(pod, spec) {
      const name = pod.metadata!.name!;
      const namespace = pod.metadata!.namespace!;
      const body: PeerPod = {
        apiVersion: PEERPOD_API_VERSION,
        kind: PEERPOD_KIND,
        metadata: {
          name,
          namespace,
          finalizers: [VM_FINALIZER],
          ownerReferences: [{ apiVersion: "v1", kind: "Pod", name, uid: spec.podUID, controller: true }],
        },
        spec,
      };
      try {
        return (await custom.createNamespacedCustomObject({ ...at(body), body })) as PeerPod;
      } catch (error) {
        if (apiStatus(error) !== 409) throw error;
        const existing = await this.getRecord(namespace, name);
        if (!existing) throw error;
        return existing;
      }
    },
    async getRecord(namespace, name) {
      try {
        return (await custom.getNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace, name })) as PeerPod;
      } catch (error) {
        ignoreGone(error);
        return undefined;
      }
    },
    async patchRecordStatus(record, status) {
      return (await custom.patchNamespacedCustomObjectStatus({ ...at(record), body: { status } }, mergePatch)) as PeerPod;
    },
    async patchRecordSpec(record, spec) {
      return (await custom.patchNamespacedCustomObject({ ...at(record), body: { spec } }, mergePatch)) as PeerPod;
    },
    async releaseRecord(record) {
      const finalizers = (record.metadata.finalizers ?? []).filter((f) => f !== VM_FINALIZER);
      try {
        // The uid guards against releasing a newer record of the same name.
        const body = { metadata: { uid: record.metadata.uid, finalizers: finalizers.length ? finalizers : null } };
        await custom.patchNamespacedCustomObject({ ...at(record), body }, mergePatch);
        if (!record.metadata.deletionTimestamp) await custom.deleteNamespacedCustomObject({ ...at(record) });
      } catch (error) {
        ignoreGone(error);
      }
    },
    async setPodCondition(pod, status, reason, message) {
      const condition = { type: VM_READY_CONDITION, status, reason, message, lastTransitionTime: new Date().toISOString(), lastProbeTime: null };
      const body = { metadata: { uid: pod.metadata!.uid }, status: { conditions: [condition] } };
      await core.patchNamespacedPodStatus({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body }, strategicMergePatch);
    },
  };
}
