import type { ConnectionOptions } from "node:tls";
import { TAG, type Tags } from "../providers/types.js";
import type { AgentTls } from "./store.js";

/** Where a VM's agent is reached, and the TLS that reaches only that VM's agent (none without an agent CA). */
export interface AgentTarget {
  endpoint: string;
  tls?: ConnectionOptions;
}

/** The VM's agent at `endpoint`, over mutual TLS when the node has an agent CA: then only a VM issued a certificate at creation (its tag says for which name) is reached. */
export async function agentTarget(endpoint: string, tags: Tags, agentTls: AgentTls | undefined): Promise<AgentTarget> {
  if (!agentTls) return { endpoint };
  const identity = tags[TAG.agentIdentity];
  if (!identity) throw new Error("the VM was booted without an agent certificate (no agent identity tag), and this node reaches agents over mutual TLS only");
  return { endpoint, tls: await agentTls.clientFor(identity) };
}
