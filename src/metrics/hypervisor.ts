import { Counter, Gauge, Histogram } from "prom-client";
import { registry } from "./registry.js";

export const hypervisorRequests = new Counter({
  name: "peerpods_hypervisor_requests_total",
  help: "Kata remote-hypervisor ttrpc requests by method and result (a google.rpc code name, lower case).",
  labelNames: ["method", "result"] as const,
  registers: [registry],
});

export const hypervisorDuration = new Histogram({
  name: "peerpods_hypervisor_duration_seconds",
  help: "Time to answer a Kata remote-hypervisor ttrpc request, by method.",
  labelNames: ["method"] as const,
  buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers: [registry],
});

export const agentConnections = new Gauge({
  name: "peerpods_agent_connections",
  help: "Open connections forwarded from sandbox agent sockets to their VMs' agents.",
  registers: [registry],
});

export const podNetworkSetups = new Counter({
  name: "peerpods_pod_network_setups_total",
  help: "Pod networks tied to their VMs by the hypervisor part, by result: connected, unavailable (the VM has no private address) or failed.",
  labelNames: ["result"] as const,
  registers: [registry],
});

export const podNetworkSetupDuration = new Histogram({
  name: "peerpods_pod_network_setup_seconds",
  help: "Time to tie a pod's network namespace on the node to its VM (tunnel on the node and the pod's interface in the VM).",
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});
