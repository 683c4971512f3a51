import { dirname } from "node:path";
import { buildRuntime } from "../../src/runtime/build.js";
import type { RealNodeOptions } from "../cluster/node/node.js";

/** The RuntimeClass (and CRI handler) whose pods run in their VM. */
export const PEERPODS_RUNTIME_CLASS = "peerpods";
export const PEERPODS_RUNTIME_TYPE = "io.containerd.peerpods.v2";

/**
 * The real node's containerd options that run handler `peerpods` with containerd-shim-peerpods-v2
 * (built, or reused, first), which asks the hypervisor part on `hypervisorSocket` for the pod's VM.
 */
export async function peerpodsContainerd(hypervisorSocket: string): Promise<NonNullable<RealNodeOptions["containerd"]>> {
  const { shim } = await buildRuntime();
  return { shimDirs: [dirname(shim)], env: { PEERPODS_HYPERVISOR_SOCKET: hypervisorSocket }, runtimeTypes: { [PEERPODS_RUNTIME_CLASS]: PEERPODS_RUNTIME_TYPE } };
}
