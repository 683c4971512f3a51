import type { InstanceType, PolicySpec } from "./schema.js";

/** Peer-pod VMs in use, counted against the policy's cluster-wide limits. */
export interface Usage {
  vms: number;
  vcpus: number;
}

export type Limits = PolicySpec["limits"];

export const hasLimits = (limits: Limits): boolean => limits.maxVMs !== undefined || limits.maxVCPUs !== undefined;

/** The cluster-wide limit one more VM of `type` would break on top of `used`, or undefined when it fits. */
export function limitExceeded(limits: Limits, used: Usage, type: InstanceType): string | undefined {
  const { maxVMs, maxVCPUs } = limits;
  if (maxVMs !== undefined && used.vms + 1 > maxVMs) return `peer-pod limit maxVMs=${maxVMs} reached: ${used.vms} VMs in use`;
  if (maxVCPUs !== undefined && used.vcpus + type.vcpus > maxVCPUs) {
    return `peer-pod limit maxVCPUs=${maxVCPUs} would be exceeded: ${used.vcpus} vCPUs in use, instance type ${type.name} needs ${type.vcpus}`;
  }
  return undefined;
}
