import { Code } from "../../hypervisor/ttrpc.js";
import { withAgent } from "../../runtime/agent-client.js";
import { TtrpcStatusError } from "../../runtime/ttrpc-client.js";
import { ProviderError } from "../types.js";
import { workloadScript } from "./workload.js";

/**
 * Hands a pod's data (and the workload it implies, if any) to the booted VM `vmId` whose agent is
 * forwarded to `port`. Only the pod that recorded the claim hands data over, so a workload already
 * started is its own (a retry after a crash) and not a refusal.
 */
export async function handOverPodData(vmId: string, port: number, userData: string): Promise<void> {
  const workload = workloadScript(userData);
  try {
    await withAgent(`tcp:127.0.0.1:${port}`, async (agent) => {
      await agent.setUserData(userData);
      if (workload !== undefined) await agent.startWorkload(workload).catch(unlessAlreadyStarted);
    });
  } catch (error) {
    throw new ProviderError("retryable", `could not hand the pod's data to qemu VM ${vmId}: ${(error as Error).message}`, { cause: error });
  }
}

function unlessAlreadyStarted(error: unknown): void {
  if (!(error instanceof TtrpcStatusError && error.code === Code.ALREADY_EXISTS)) throw error;
}
