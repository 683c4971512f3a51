import type { KubernetesObject, V1ObjectMeta } from "@kubernetes/client-node";

/** The PeerPod custom resource: the worker's record of one peer pod's VM (CRD in manifests/crds/peerpod.yaml). */

export const PEERPOD_GROUP = "peerpods.io";
export const PEERPOD_VERSION = "v1alpha1";
export const PEERPOD_PLURAL = "peerpods";
export const PEERPOD_KIND = "PeerPod";
export const PEERPOD_API_VERSION = `${PEERPOD_GROUP}/${PEERPOD_VERSION}`;

/** Holds a PeerPod until its VM is gone. */
export const VM_FINALIZER = "peerpods.io/vm";

/** PeerPod condition set True when the provider refused the pod's VM for good (a ProviderError of kind "invalid"): no more attempts are made. */
export const REFUSED_CONDITION = "Refused";

export type PeerPodPhase = "Pending" | "Creating" | "Ready" | "Deleting" | "Failed";

export interface PeerPodSpec {
  podUID: string;
  nodeName: string;
  instanceType: string;
  provider: string;
  /** The provider's idempotency key for the pod's current VM; changes only when a VM is lost and replaced. */
  instanceName: string;
}

export interface PeerPodCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface PeerPodStatus {
  phase?: PeerPodPhase;
  instanceID?: string | null;
  address?: string | null;
  agentEndpoint?: string | null;
  message?: string | null;
  readyTime?: string | null;
  /** For a pooled instance type: whether the pod got an idle warm-pool VM (hit) or a fresh boot (miss). */
  warmPool?: "hit" | "miss" | null;
  conditions?: PeerPodCondition[];
}

export interface PeerPod extends KubernetesObject {
  apiVersion: typeof PEERPOD_API_VERSION;
  kind: typeof PEERPOD_KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: PeerPodSpec;
  status?: PeerPodStatus;
}

/** The first VM of a pod is named after its UID; a replacement after a loss gets the next number. */
export function instanceName(podUID: string, replacement = 0): string {
  return replacement === 0 ? `pp-${podUID}` : `pp-${podUID}-r${replacement}`;
}

/** The name for the VM that replaces the one called `current`. */
export function nextInstanceName(podUID: string, current: string): string {
  const match = /-r(\d+)$/.exec(current);
  return instanceName(podUID, match ? Number(match[1]) + 1 : 1);
}
