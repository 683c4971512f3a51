import { createHash } from "node:crypto";

export interface Subnet {
  id: string;
  zone: string;
}

/**
 * The subnets to try for one VM, in order: only those in `zones` (where the instance type is
 * offered; all when unrestricted), starting at a position derived from `key` so that VMs spread
 * over the zones while the order for one VM stays the same across retries and restarts.
 */
export function subnetCandidates(subnets: readonly Subnet[], zones: readonly string[] | undefined, key: string): Subnet[] {
  const allowed = zones && zones.length > 0 ? subnets.filter((subnet) => zones.includes(subnet.zone)) : [...subnets];
  if (allowed.length === 0) return [];
  const start = createHash("sha256").update(key).digest().readUInt32BE(0) % allowed.length;
  return [...allowed.slice(start), ...allowed.slice(0, start)];
}

/**
 * RunInstances' idempotency token (at most 64 ASCII characters). It names the VM, the subnet
 * (a different request under the same token is refused by EC2) and a generation that moves on
 * only when EC2 says the token's instance was already terminated.
 */
export function clientToken(clusterId: string, name: string, subnetId: string | undefined, generation: number): string {
  return createHash("sha256").update(`${clusterId}\0${name}\0${subnetId ?? ""}\0${generation}`).digest("hex").slice(0, 64);
}
