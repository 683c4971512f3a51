import { Counter, Gauge } from "prom-client";
import { registry } from "./registry.js";

export const agentTlsExpiry = new Gauge({
  name: "peerpods_agent_tls_expiry_timestamp_seconds",
  help: "When the agent channel's certificates expire (unix seconds): kind ca is the CA that signs VM certificates, client the node-side client certificate.",
  labelNames: ["kind"] as const,
  registers: [registry],
});

export const agentChannelPlaintext = new Gauge({
  name: "peerpods_agent_channel_plaintext",
  help: "1 when this process reaches pod VMs' agents without mutual TLS (no --agent-tls-dir): anyone who reaches an agent port can run processes in that pod.",
  registers: [registry],
});

export const agentTlsRefusals = new Counter({
  name: "peerpods_agent_tls_refusals_total",
  help: "Connections to pod VMs' agents closed because mutual TLS failed (the VM's certificate is not for the VM expected or from no trusted CA, or the agent refused this node's).",
  registers: [registry],
});
