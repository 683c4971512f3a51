import type { AgentTls } from "../../agent-tls/store.js";
import { agentTarget } from "../../agent-tls/target.js";
import { Code } from "../../hypervisor/ttrpc.js";
import { withAgent } from "../../runtime/agent-client.js";
import { TtrpcStatusError } from "../../runtime/ttrpc-client.js";
import { ProviderError, type Tags } from "../types.js";
import { workloadScript } from "./workload.js";

/**
 * Hands a pod's data (and the workload it implies, if any) to the booted VM `vm.id` whose agent
 * answers at `vm.endpoint` (over mutual TLS with the VM its tags name, where the node has an agent CA). Only the pod that recorded the claim hands data over, so a workload already
 * started is its own (a retry after a crash) and not a refusal.
 */
export async function handOverPodData(vm: { id: string; endpoint: string; tags: Tags }, userData: string, agentTls: AgentTls | undefined): Promise<void> {
  const workload = workloadScript(userData);
  try {
    await withAgent(await agentTarget(vm.endpoint, vm.tags, agentTls), async (agent) => {
      await agent.setUserData(userData);
      if (workload !== undefined) await agent.startWorkload(workload).catch(unlessAlreadyStarted);
    });
  } catch (error) {
    throw new ProviderError("retryable", `could not hand the pod's data to qemu VM ${vm.id}: ${(error as Error).message}`, { cause: error });
  }
}

function unlessAlreadyStarted(error: unknown): void {
  if (!(error instanceof TtrpcStatusError && error.code === Code.ALREADY_EXISTS)) throw error;
}
