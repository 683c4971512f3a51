import { Counter, Gauge } from "prom-client";
import { registry } from "./registry.js";

export const poolVms = new Gauge({
  name: "peerpods_warm_pool_vms",
  help: "Warm-pool VMs not claimed by a pod, by instance type and state (idle, booting, unhealthy), as of the last pool sync.",
  labelNames: ["instance_type", "state"] as const,
  registers: [registry],
});

export const poolClaims = new Counter({
  name: "peerpods_warm_pool_claims_total",
  help: "Pods of a pooled instance type that found an idle VM (hit) or had to boot one (miss).",
  labelNames: ["result"] as const,
  registers: [registry],
});

export const poolIdleCost = new Gauge({
  name: "peerpods_warm_pool_idle_cost_per_hour",
  help: "Summed hourlyCost of the warm-pool VMs not claimed by a pod.",
  registers: [registry],
});

export const poolOperations = new Counter({
  name: "peerpods_warm_pool_operations_total",
  help: "Pool VMs booted and deleted, by operation, reason and result.",
  labelNames: ["op", "reason", "result"] as const,
  registers: [registry],
});
