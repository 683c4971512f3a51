import type { EventRecorder } from "../kube/events.js";
import type { PartContext, RunningPart } from "../parts.js";
import { agentConnections, hypervisorDuration, hypervisorRequests, podNetworkSetupDuration, podNetworkSetups } from "../metrics/hypervisor.js";
import { withAgent } from "../runtime/agent-client.js";
import { kubeClusterView, type ClusterView } from "./cluster.js";
import { podnetCommand } from "./pod-network.js";
import { Sandboxes } from "./sandboxes.js";
import { hypervisorService } from "./service.js";
import { podEvents } from "./tell.js";
import { codeName, startTtrpcServer, type CallOutcome } from "./ttrpc.js";

function record(outcome: CallOutcome): void {
  const method = outcome.known ? outcome.method : "unknown";
  hypervisorRequests.inc({ method, result: codeName(outcome.code) });
  hypervisorDuration.observe({ method }, outcome.seconds);
}

/** Kata's remote hypervisor on this node: `hypervisor.Hypervisor` over ttrpc, one forwarded agent socket per sandbox. */
export async function startHypervisor(context: PartContext): Promise<RunningPart> {
  const { config, policy } = context;
  const log = context.log.child({ part: "hypervisor" });
  let cluster: ClusterView | undefined;
  let events: EventRecorder | undefined;
  try {
    cluster = kubeClusterView(context.kube(), log);
    events = context.events();
  } catch (error) {
    log.warn({ err: error }, "no cluster connection: every sandbox's VM is made from its annotations alone");
  }
  const tell = podEvents(events);
  const sandboxes = new Sandboxes({
    podsDir: config.podsDir,
    clusterId: config.clusterId,
    provider: context.provider,
    policy: () => policy.current,
    ...(cluster ? { cluster } : {}),
    log,
    onConnections: (delta) => agentConnections.inc(delta),
    tell,
    ...(context.agentTls ? { agentTls: context.agentTls } : {}),
    network: {
      networker: podnetCommand(config.podnetBinary),
      configureVm: (target, network) => withAgent(target, (agent) => agent.setupNetwork(network)),
      tell,
      log,
      observe: (result, seconds) => {
        podNetworkSetups.inc({ result });
        if (result === "connected") podNetworkSetupDuration.observe(seconds);
      },
    },
  });
  const restored = await sandboxes.restore();
  const server = await startTtrpcServer({ path: config.hypervisorSocket, services: hypervisorService(sandboxes, log, tell), log, observe: record });
  log.info({ socket: config.hypervisorSocket, podsDir: config.podsDir, restored }, "remote hypervisor listening");
  return {
    stop: async (graceMs) => {
      await server.close(graceMs);
      await sandboxes.close();
    },
  };
}
