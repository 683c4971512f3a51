import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { apiStatus } from "../kube/errors.js";
import { objectKey } from "../kube/keys.js";
import { peerPodRecords } from "../kube/peerpod-records.js";
import type { Logger } from "../log/logger.js";
import { podRef, workerRecord, type PodRef, type WorkerRecord } from "./vms.js";

/** What CreateVM asks the cluster. Both answer undefined when the object is absent or the apiserver cannot be reached. */
export interface ClusterView {
  pod(namespace: string, name: string): Promise<PodRef | undefined>;
  record(namespace: string, name: string): Promise<WorkerRecord | undefined>;
}

/** A slow or unreachable apiserver must not hold the shim: past this, CreateVM goes on without the answer. */
const LOOKUP_TIMEOUT_MS = 3000;

export function kubeClusterView(kc: KubeConfig, log: Logger): ClusterView {
  const core = kc.makeApiClient(CoreV1Api);
  const records = peerPodRecords(kc);
  return {
    pod: (namespace, name) =>
      lookup(log, `pod ${objectKey({ namespace, name })}`, async () => {
        // A list by name rather than a get: the main ClusterRole grants list on pods, so the
        // hypervisor needs no extra verb whether it runs in the node DaemonSet or beside the worker.
        const pod = (await core.listNamespacedPod({ namespace, fieldSelector: `metadata.name=${name}` })).items[0];
        return pod && podRef(pod);
      }),
    record: (namespace, name) =>
      lookup(log, `PeerPod ${objectKey({ namespace, name })}`, async () => {
        const record = await records.getRecord(namespace, name);
        return record && workerRecord(record);
      }),
  };
}

async function lookup<T>(log: Logger, what: string, read: () => Promise<T | undefined>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${LOOKUP_TIMEOUT_MS} ms`)), LOOKUP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([read(), timeout]);
  } catch (error) {
    if (apiStatus(error) === 404) return undefined;
    log.warn({ err: error }, `could not read ${what}; going on without it`);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
