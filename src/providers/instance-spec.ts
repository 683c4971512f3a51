import type { V1Pod } from "@kubernetes/client-node";
import type { InstanceType } from "../policy/schema.js";
import { TAG, type InstanceSpec, type Tags } from "./types.js";

/** Whom a VM serves, as far as the asking part knows: what its tags and user data say. */
export interface VmOwner {
  podUID?: string;
  namespace?: string;
  name?: string;
  /** The first container's command and args: the part of the pod the local image can run. */
  command?: readonly string[];
}

/**
 * The VM asked of the provider for a pod, by the worker at bind time or by the hypervisor at
 * CreateVM, whichever comes first: the same name makes both one VM (the provider is idempotent
 * on it), and the same tags and user data make it the same VM whoever created it. The user data
 * is readable inside the VM, so it never holds credentials.
 */
export function instanceSpecFor(clusterId: string, name: string, instanceType: InstanceType, owner: VmOwner): InstanceSpec {
  const { podUID, namespace, name: pod, command } = owner;
  const tags: Tags = { [TAG.cluster]: clusterId, [TAG.instanceType]: instanceType.name };
  if (podUID) tags[TAG.podUid] = podUID;
  if (namespace) tags[TAG.namespace] = namespace;
  if (pod) tags[TAG.podName] = pod;
  const userData = JSON.stringify({ cluster: clusterId, namespace, pod, podUID, ...(command?.length ? { command } : {}) });
  return { name, instanceType, userData, tags };
}

/** The first container's command and args; empty when it relies on its image's entrypoint. */
export function podCommand(pod: Pick<V1Pod, "spec">): string[] {
  const first = pod.spec?.containers[0];
  return [...(first?.command ?? []), ...(first?.args ?? [])];
}
