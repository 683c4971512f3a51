import { z } from "zod";
import type { AgentTarget } from "../agent-tls/target.js";
import type { Logger } from "../log/logger.js";
import type { Instance } from "../providers/types.js";
import { podIp, type PodNetwork, type PodNetworker } from "./pod-network.js";
import type { SandboxPod, Tell } from "./tell.js";
import { Code, RpcError } from "./ttrpc.js";

/** What became of a sandbox's pod network; kept in its record so a restarted part does not redo it. */
export const networkStateSchema = z.discriminatedUnion("state", [
  z.object({ state: z.literal("connected"), podIp: z.string(), vmIp: z.string(), vni: z.number().int() }),
  z.object({ state: z.literal("unavailable"), reason: z.string() }),
]);
export type NetworkState = z.infer<typeof networkStateSchema>;

export interface SandboxNetworkOptions {
  networker: PodNetworker;
  /** Gives the pod's network namespace in the VM the pod's interface (the agent's SetupNetwork). */
  configureVm: (target: AgentTarget, network: PodNetwork) => Promise<void>;
  tell: Tell;
  log: Logger;
  /** Counts each outcome (connected, unavailable, failed) and how long connecting took. */
  observe?: (outcome: "connected" | "unavailable" | "failed", seconds: number) => void;
}

/** A pod network that could not be connected: the sandbox does not start without it. */
export class PodNetworkError extends RpcError {
  readonly reason = "PodNetworkFailed";
  constructor(message: string) {
    super(Code.INTERNAL, message);
  }
}

export interface NetworkSandbox {
  id: string;
  who: SandboxPod;
  /** The pod's network namespace on the node (CreateVM's networkNamespacePath). */
  netnsPath: string;
  instance: Instance;
  target: AgentTarget;
}

/**
 * Ties the pod's network namespace on the node to its VM: the tunnel on the node, then the pod's
 * interface in the VM. A VM without a private address (qemu's user-mode network) cannot carry the
 * pod's IP: the pod runs without a cluster network, and says so.
 */
export async function connectPodNetwork(options: SandboxNetworkOptions, sandbox: NetworkSandbox): Promise<NetworkState> {
  const { networker, configureVm, tell, observe } = options;
  const { id, who, netnsPath, instance, target } = sandbox;
  const log = options.log.child({ pod: who.pod, sandbox: id, instanceId: instance.id });
  const started = Date.now();
  const seconds = (): number => (Date.now() - started) / 1000;
  if (!instance.privateIp) {
    const reason = `VM ${instance.id} has no private address (the provider's network cannot carry the pod's IP, e.g. qemu's user-mode network): the pod has no cluster network`;
    log.warn(reason);
    tell(who, "Warning", "PodNetworkUnavailable", reason);
    observe?.("unavailable", seconds());
    return { state: "unavailable", reason };
  }
  try {
    const network = await networker.attach(netnsPath, id, instance.privateIp);
    await configureVm(target, network);
    const state: NetworkState = { state: "connected", podIp: podIp(network), vmIp: instance.privateIp, vni: network.vni };
    const message = `pod IP ${state.podIp} is served by VM ${instance.id} at ${state.vmIp} over VXLAN (VNI ${state.vni}, MTU ${network.mtu})`;
    log.info({ ...state, ms: Math.round(seconds() * 1000) }, "pod network connected");
    tell(who, "Normal", "PodNetwork", message);
    observe?.("connected", seconds());
    return state;
  } catch (error) {
    observe?.("failed", seconds());
    throw new PodNetworkError(`pod network for VM ${instance.id}: ${(error as Error).message}`);
  }
}
