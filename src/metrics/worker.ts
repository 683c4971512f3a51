import { Counter, Gauge, Histogram } from "prom-client";
import { registry } from "./registry.js";

/** What the running worker exposes at scrape time; unset while this replica does not lead. */
export const workerView: {
  vmCounts?: () => Iterable<[phase: string, instanceType: string, count: number]>;
  queueDepth?: () => number;
} = {};

export const vms = new Gauge({
  name: "peerpods_vms",
  help: "PeerPod records by phase and instance type, as the worker's cache sees them.",
  labelNames: ["phase", "instance_type"] as const,
  registers: [registry],
  collect() {
    this.reset();
    for (const [phase, instanceType, count] of workerView.vmCounts?.() ?? []) this.set({ phase, instance_type: instanceType }, count);
  },
});

export const vmOperations = new Counter({
  name: "peerpods_vm_operations_total",
  help: "VM operations the worker made through the provider, by operation and result.",
  labelNames: ["op", "result"] as const,
  registers: [registry],
});

export const vmReadySeconds = new Histogram({
  name: "peerpods_vm_ready_seconds",
  help: "Time from the pod being bound to a node until its VM is ready.",
  buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
  registers: [registry],
});

export const providerErrors = new Counter({
  name: "peerpods_provider_errors_total",
  help: "Failed provider calls by provider and error kind (retryable, quota, invalid, notFound).",
  labelNames: ["provider", "kind"] as const,
  registers: [registry],
});

export const gcDeleted = new Counter({
  name: "peerpods_gc_deleted_total",
  help: "VMs deleted by garbage collection because no live pod owned them.",
  registers: [registry],
});

export const workqueueDepth = new Gauge({
  name: "peerpods_workqueue_depth",
  help: "Pods waiting in the worker's queue.",
  registers: [registry],
  collect() {
    this.set(workerView.queueDepth?.() ?? 0);
  },
});
