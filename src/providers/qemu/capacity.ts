import { ProviderError, TAG, type InstanceSpec } from "../types.js";
import type { QemuSettings } from "./settings.js";
import type { VmRecord } from "./state.js";

/** The live VM a previous `create` made for this spec: the same name or the same pod. */
export function sameVm<T extends { record: VmRecord }>(live: readonly T[], spec: InstanceSpec): T | undefined {
  const podUid = spec.tags[TAG.podUid];
  return live.find(({ record }) => record.name === spec.name || (podUid !== undefined && record.tags[TAG.podUid] === podUid));
}

/** Throws a quota error when one more VM of the spec's size would break the host's limits. */
export function checkRoom(live: readonly VmRecord[], spec: InstanceSpec, limits: Pick<QemuSettings, "maxVMs" | "maxMemoryMiB">): void {
  if (live.length + 1 > limits.maxVMs) throw new ProviderError("quota", `host limit of ${limits.maxVMs} VMs reached`);
  const usedMiB = live.reduce((sum, record) => sum + record.memoryMiB, 0);
  if (usedMiB + spec.instanceType.memoryMiB > limits.maxMemoryMiB) {
    throw new ProviderError("quota", `host memory limit: ${usedMiB} MiB of ${limits.maxMemoryMiB} MiB in use, ${spec.instanceType.name} needs ${spec.instanceType.memoryMiB} MiB`);
  }
}
