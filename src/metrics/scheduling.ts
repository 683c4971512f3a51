import { Counter, Gauge, Histogram } from "prom-client";
import { registry } from "./registry.js";

export type ExtenderVerb = "filter" | "prioritize";
export type ExtenderResult = "ok" | "skipped" | "nofit" | "invalid" | "error";

export const extenderRequests = new Counter({
  name: "peerpods_extender_requests_total",
  help: "Scheduler extender requests by verb and outcome (nofit: no node passed the filter).",
  labelNames: ["verb", "result"] as const,
  registers: [registry],
});

export const extenderDuration = new Histogram({
  name: "peerpods_extender_duration_seconds",
  help: "Time from request start to response for scheduler extender requests.",
  labelNames: ["verb"] as const,
  buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
  registers: [registry],
});

export const quotaUsed = new Gauge({
  name: "peerpods_quota_used",
  help: "Cluster-wide peer-pod use counted against the policy's limits (vms, vcpus), including pods being bound.",
  labelNames: ["resource"] as const,
  registers: [registry],
});

export const nodeVmSlots = new Gauge({
  name: "peerpods_node_vm_slots",
  help: "Peer-pod VM slots advertised per node: capacity and allocatable.",
  labelNames: ["node", "state"] as const,
  registers: [registry],
});

export const advertiserPatches = new Counter({
  name: "peerpods_advertiser_patches_total",
  help: "Node status patches by the advertiser by outcome.",
  labelNames: ["result"] as const,
  registers: [registry],
});
