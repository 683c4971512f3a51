import { Counter, Gauge, Histogram } from "prom-client";
import { registry } from "./registry.js";

export type AdmissionResult = "mutated" | "skipped" | "denied" | "invalid" | "error";

export const admissionRequests = new Counter({
  name: "peerpods_admission_requests_total",
  help: "AdmissionReview requests by outcome.",
  labelNames: ["result"] as const,
  registers: [registry],
});

export const admissionDuration = new Histogram({
  name: "peerpods_admission_duration_seconds",
  help: "Time from request start to response for AdmissionReview requests.",
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
  registers: [registry],
});

export const policyGeneration = new Gauge({
  name: "peerpods_policy_generation",
  help: "Generation of the PeerPodPolicy in force (counts accepted updates when loaded from a file).",
  registers: [registry],
});

export const policyErrors = new Counter({
  name: "peerpods_policy_errors_total",
  help: "Policy updates rejected because they failed validation; the last good policy stays in force.",
  registers: [registry],
});
