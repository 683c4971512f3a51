import type { V1Pod } from "@kubernetes/client-node";

/**
 * What a pod's VM is told at boot: who it serves, and the first container's command and args
 * (the part of the pod the local image can run). Never credentials: this is readable in the VM.
 */
export function podUserData(pod: V1Pod, clusterId: string, podUID: string): string {
  const meta = pod.metadata ?? {};
  const first = pod.spec?.containers[0];
  const command = [...(first?.command ?? []), ...(first?.args ?? [])];
  return JSON.stringify({ cluster: clusterId, namespace: meta.namespace, pod: meta.name, podUID, ...(command.length ? { command } : {}) });
}
