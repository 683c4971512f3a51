/**
 * The node's TypeScript side of agent.proto (pkg/agentapi), for what the worker asks of a pod VM's
 * agent: its version and health, the pod's user data, the shell workload. The containerd shim
 * speaks the rest in Go (pkg/agentclient).
 */
import { fileURLToPath } from "node:url";
import type { AgentTarget } from "../agent-tls/target.js";
import protobuf from "protobufjs";
import type { PodNetwork } from "../hypervisor/pod-network.js";
import { codecOf } from "../hypervisor/protos.js";
import { ResetBeforeAnswer, TtrpcClient, TtrpcStatusError } from "./ttrpc-client.js";

export const AGENT_SERVICE = "peerpods.agent.Agent";
/** pkg/agentapi's ProtocolVersion and metadata key (a unit test keeps them equal). */
export const AGENT_PROTOCOL_VERSION = 1;
export const AGENT_PROTOCOL_METADATA_KEY = "peerpods-agent-protocol";

const root = new protobuf.Root();
root.loadSync(fileURLToPath(new URL("./pkg/agentapi/agent.proto", import.meta.url)), { keepCase: true });
const codec = <T>(name: string) => codecOf<T>(root, `peerpods.agent.${name}`);

export interface AgentVersion {
  agent_version: string;
  protocol_versions: number[];
  kernel_release: string;
  vcpus: number;
  runc_version: string;
}

export interface AgentHealth {
  ready: boolean;
  uptime_ms: number;
  instance_id: string;
  /** "none", "running" or "exited N". */
  workload: string;
  containers: number;
  leftovers?: { bundles: number; runc_states: number; cgroups: number; bundle_bytes: number };
  failed_calls: Record<string, number>;
}

export const agentMessages = {
  empty: codec<Record<string, never>>("Empty"),
  versionResponse: codec<AgentVersion>("VersionResponse"),
  healthResponse: codec<AgentHealth>("HealthResponse"),
  setUserDataRequest: codec<{ data: Buffer }>("SetUserDataRequest"),
  startWorkloadRequest: codec<{ script: string }>("StartWorkloadRequest"),
  setupNetworkRequest: codec<SetupNetworkRequest>("SetupNetworkRequest"),
};

export interface SetupNetworkRequest {
  interface: string;
  mac: string;
  mtu: number;
  addresses: string[];
  routes: { destination: string; gateway: string }[];
  vni: number;
  port: number;
  node_ip: string;
}

/** What the VM's agent needs of the pod's network: the interface to recreate and the tunnel's far end, the node. */
export function setupNetworkRequest(network: PodNetwork): SetupNetworkRequest {
  const { interface: name, mac, mtu, addresses, routes, vni, port, nodeIp } = network;
  return { interface: name, mac, mtu, addresses, routes: routes.map(({ destination, gateway }) => ({ destination, gateway: gateway ?? "" })), vni, port, node_ip: nodeIp };
}

/** google.rpc.Code UNIMPLEMENTED: what ttrpc answers for a method the server does not have. */
const UNIMPLEMENTED = 12;
const RESET_RETRIES = 3;
const RESET_RETRY_DELAY_MS = 250;

/** One connection to an agent; every call carries this side's protocol version. */
export class AgentClient {
  private constructor(
    private readonly ttrpc: TtrpcClient,
    private readonly timeoutMs: number,
  ) {}

  static async connect(target: AgentTarget, timeoutMs: number): Promise<AgentClient> {
    return new AgentClient(await TtrpcClient.connect(target, timeoutMs), timeoutMs);
  }

  /** A call with a raw request payload (what the typed methods use; tests send malformed ones). */
  call(method: string, payload: Uint8Array): Promise<Buffer> {
    return this.ttrpc.call(AGENT_SERVICE, method, payload, { timeoutMs: this.timeoutMs, metadata: { [AGENT_PROTOCOL_METADATA_KEY]: String(AGENT_PROTOCOL_VERSION) } });
  }

  async version(): Promise<AgentVersion> {
    return agentMessages.versionResponse.decode(await this.call("Version", agentMessages.empty.encode({})));
  }

  async health(): Promise<AgentHealth> {
    return agentMessages.healthResponse.decode(await this.call("Health", agentMessages.empty.encode({})));
  }

  async setUserData(userData: string): Promise<void> {
    await this.call("SetUserData", agentMessages.setUserDataRequest.encode({ data: Buffer.from(userData) }));
  }

  /** Rejects with code ALREADY_EXISTS when the VM started a workload before. */
  async startWorkload(script: string): Promise<void> {
    await this.call("StartWorkload", agentMessages.startWorkloadRequest.encode({ script }));
  }

  /** Gives the pod's network namespace in the VM the pod's interface; the same request again is accepted, another one refused. */
  async setupNetwork(network: PodNetwork): Promise<void> {
    await this.call("SetupNetwork", agentMessages.setupNetworkRequest.encode(setupNetworkRequest(network))).catch((error: unknown) => {
      if (error instanceof TtrpcStatusError && error.code === UNIMPLEMENTED) throw new Error("the VM's agent has no SetupNetwork: the pod VM image predates the pod network (npm run podvm:build makes a current one) or runs another agent (a cloud-api-adaptor image's kata-agent)");
      throw error;
    });
  }

  close(): void {
    this.ttrpc.close();
  }
}

/**
 * Runs `session` on a connection to the agent at `target` (`tcp:HOST:PORT` or a unix socket, or
 * that with the TLS that reaches the VM's agent port directly).
 * qemu's user-mode network resets a connection the guest has not accepted yet, so a reset before
 * the agent answered anything is tried again a few times: nothing the agent answered is repeated.
 */
export async function withAgent<T>(target: string | AgentTarget, session: (agent: AgentClient) => Promise<T>, timeoutMs = 10_000): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let agent: AgentClient | undefined;
    try {
      agent = await AgentClient.connect(typeof target === "string" ? { endpoint: target } : target, timeoutMs);
      return await session(agent);
    } catch (error) {
      if (!(error instanceof ResetBeforeAnswer) || attempt >= RESET_RETRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, RESET_RETRY_DELAY_MS));
    } finally {
      agent?.close();
    }
  }
}
