import type { V1Pod } from "@kubernetes/client-node";
import { objectKey } from "../kube/keys.js";
import type { PeerPod } from "../kube/peerpod.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { TAG, taggedPod, type Instance } from "../providers/types.js";
import { podFacts } from "./decide.js";

/** The pods that may own VMs: by UID, and by `namespace/name` for VMs made without a pod UID. */
export interface LivePods {
  uids: ReadonlySet<string>;
  names: ReadonlySet<string>;
}

/** The pods not done (terminating, Succeeded or Failed): their VMs are not leaks. */
export function livePods(pods: readonly V1Pod[], policy: CompiledPolicy): LivePods {
  const live = pods.filter((pod) => !podFacts(pod, policy).done);
  return { uids: new Set(live.map((pod) => pod.metadata!.uid!)), names: new Set(live.map((pod) => objectKey(pod.metadata))) };
}

/**
 * This cluster's instances that no live pod owns and that are older than the grace period (which
 * covers a create whose pod the informer has not delivered yet). Warm-pool VMs are not leaks, nor
 * are VMs without a pod UID whose namespace/name tags name a live pod (the hypervisor creates
 * those when it could not look the pod up).
 */
export function findLeaks(instances: readonly Instance[], live: LivePods, now: number, graceMs: number): Instance[] {
  return instances.filter((instance) => {
    if (instance.tags[TAG.pool] !== undefined) return false;
    const uid = instance.tags[TAG.podUid];
    const pod = taggedPod(instance.tags);
    if (uid !== undefined ? live.uids.has(uid) : pod !== undefined && live.names.has(pod)) return false;
    return now - instance.createdAt.getTime() >= graceMs;
  });
}

/**
 * Records that need a reconcile after a GC listing: those whose pod is gone (to be finalized) and
 * those whose VM is missing from the cloud (lost behind peerpods' back).
 */
export function recordsToRevisit(records: readonly PeerPod[], livePodUids: ReadonlySet<string>, instanceIds: ReadonlySet<string>): PeerPod[] {
  return records.filter((record) => {
    if (!livePodUids.has(record.spec.podUID)) return true;
    const id = record.status?.instanceID;
    return Boolean(id) && !instanceIds.has(id!);
  });
}
