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

export type ExtenderPhase = "parse" | "decide" | "serialise";
export type PhaseTotals = Record<ExtenderPhase, number>;

/**
 * Milliseconds per verb and phase, summed in plain numbers on the request path: a prom-client
 * observation (label hashing, validation) costs about as much as a phase itself, so the counter
 * below only reads these sums at scrape time.
 */
const phaseTotals: Record<ExtenderVerb, PhaseTotals> = {
  filter: { parse: 0, decide: 0, serialise: 0 },
  prioritize: { parse: 0, decide: 0, serialise: 0 },
};

/** The sums a verb's requests add their phase times to (milliseconds). */
export const extenderPhaseTotals = (verb: ExtenderVerb): PhaseTotals => phaseTotals[verb];

export const extenderPhaseSeconds = new Counter({
  name: "peerpods_extender_phase_seconds_total",
  help: 'Time spent in each phase of the scheduler extender requests that were answered (parse: JSON and checks, decide, serialise); per request: divide by peerpods_extender_requests_total{result=~"ok|skipped|nofit"}.',
  labelNames: ["verb", "phase"] as const,
  registers: [registry],
  collect() {
    this.reset();
    for (const [verb, totals] of Object.entries(phaseTotals)) for (const [phase, ms] of Object.entries(totals)) this.inc({ verb, phase }, ms / 1000);
  },
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
