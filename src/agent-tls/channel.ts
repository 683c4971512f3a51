import type { Logger } from "../log/logger.js";
import { agentChannelPlaintext } from "../metrics/agent-tls.js";
import { AgentTlsStore, type AgentTls } from "./store.js";

/**
 * The agent channel this process speaks: mutual TLS with the folder's material (checked now, so a
 * bad Secret stops the process with its reason), or, without a folder, plain TCP, said loudly: a
 * log warning and `peerpods_agent_channel_plaintext` 1.
 */
export async function agentChannel(dir: string | undefined, log: Logger): Promise<AgentTls | undefined> {
  if (!dir) {
    agentChannelPlaintext.set(1);
    log.warn("no --agent-tls-dir: pod VMs' agents are reached over plain TCP and anyone who reaches an agent port can run processes in its pod; run `peerpods agent-certs` and mount the folder");
    return undefined;
  }
  const store = new AgentTlsStore(dir, log.child({ part: "agent-tls" }));
  await store.current();
  agentChannelPlaintext.set(0);
  return store;
}
