import { Counter, Histogram } from "prom-client";
import { registry } from "./registry.js";

export const awsApiCalls = new Counter({
  name: "peerpods_aws_api_calls_total",
  help: "EC2 API calls of the aws provider by action and outcome (ok, or EC2's error code), after the SDK's retries.",
  labelNames: ["action", "outcome"] as const,
  registers: [registry],
});

export const awsApiRetries = new Counter({
  name: "peerpods_aws_api_retries_total",
  help: "Attempts beyond the first that the SDK made for EC2 API calls (throttling, 5xx, network errors), by action.",
  labelNames: ["action"] as const,
  registers: [registry],
});

export const awsApiSeconds = new Histogram({
  name: "peerpods_aws_api_duration_seconds",
  help: "Time an EC2 API call took, retries and backoff included, by action.",
  labelNames: ["action"] as const,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});
