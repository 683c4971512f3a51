import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig, type ObjectCache, type V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { apiStatus } from "./errors.js";
import { startInformer, type WatchedInformer } from "./informer.js";
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

/** Reads and writes of PeerPod records through the apiserver. */
export interface PeerPodRecords {
  createRecord(pod: V1Pod, spec: PeerPodSpec): Promise<PeerPod>;
  /** Undefined when there is no such record. */
  getRecord(namespace: string, name: string): Promise<PeerPod | undefined>;
  patchRecordStatus(record: PeerPod, status: PeerPodStatus): Promise<PeerPod>;
  patchRecordSpec(record: PeerPod, spec: Partial<PeerPodSpec>): Promise<PeerPod>;
  /** Drops the finalizer and deletes the record; a record already gone is fine. */
  releaseRecord(record: PeerPod): Promise<void>;
}

const at = (namespace: string, name: string) => ({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace, name });
const atRecord = (record: PeerPod) => at(record.metadata.namespace, record.metadata.name);

function ignoreGone(error: unknown): void {
  if (apiStatus(error) !== 404) throw error;
}

export function peerPodRecords(kc: KubeConfig): PeerPodRecords {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const getRecord = async (namespace: string, name: string): Promise<PeerPod | undefined> => {
    try {
      return (await custom.getNamespacedCustomObject(at(namespace, name))) as PeerPod;
    } catch (error) {
      ignoreGone(error);
      return undefined;
    }
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
        return (await custom.createNamespacedCustomObject({ ...atRecord(body), body })) as PeerPod;
      } catch (error) {
        if (apiStatus(error) !== 409) throw error;
        const existing = await getRecord(namespace, name);
        if (!existing) throw error;
        return existing;
      }
    },
    getRecord,
    async patchRecordStatus(record, status) {
      return (await custom.patchNamespacedCustomObjectStatus({ ...atRecord(record), body: { status } }, mergePatch)) as PeerPod;
    },
    async patchRecordSpec(record, spec) {
      return (await custom.patchNamespacedCustomObject({ ...atRecord(record), body: { spec } }, mergePatch)) as PeerPod;
    },
    async releaseRecord(record) {
      const finalizers = (record.metadata.finalizers ?? []).filter((f) => f !== VM_FINALIZER);
      try {
        // The uid guards against releasing a newer record of the same name.
        const body = { metadata: { uid: record.metadata.uid, finalizers: finalizers.length ? finalizers : null } };
        await custom.patchNamespacedCustomObject({ ...atRecord(record), body }, mergePatch);
        if (!record.metadata.deletionTimestamp) await custom.deleteNamespacedCustomObject(atRecord(record));
      } catch (error) {
        ignoreGone(error);
      }
    },
  };
}

export interface PeerPodWatch extends Pick<WatchedInformer<PeerPod>, "synced" | "stop"> {
  /** The informer's cache of every PeerPod. */
  cache: ObjectCache<PeerPod>;
}

/** A self-restarting informer on every PeerPod in the cluster; `changed` hears each add, update and delete. */
export function watchPeerPods(kc: KubeConfig, log: Logger, changed: (record: PeerPod, deleted: boolean) => void): PeerPodWatch {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const list = () => custom.listClusterCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL });
  const watched = startInformer<PeerPod>(kc, `/apis/${PEERPOD_GROUP}/${PEERPOD_VERSION}/${PEERPOD_PLURAL}`, list as never, log, (informer) => {
    informer.on("add", (record) => changed(record, false));
    informer.on("update", (record) => changed(record, false));
    informer.on("delete", (record) => changed(record, true));
  });
  return { synced: watched.synced, stop: () => watched.stop(), cache: watched.informer };
}
