import type { PeerPod } from "../kube/peerpod.js";
import { workerView } from "../metrics/worker.js";

/** Shows the worker's queue depth and its VMs by phase on /metrics while it runs; returns what takes them off again. */
export function publishWorkerView(queue: { readonly depth: number }, records: () => readonly PeerPod[]): () => void {
  workerView.queueDepth = () => queue.depth;
  workerView.vmCounts = () => countByPhase(records());
  return () => {
    workerView.queueDepth = undefined;
    workerView.vmCounts = undefined;
  };
}

/** `[phase, instance type, count]` of the records; a record without a status is Pending. */
export function countByPhase(records: readonly PeerPod[]): [string, string, number][] {
  const counts = new Map<string, number>();
  for (const record of records) {
    const key = `${record.status?.phase ?? "Pending"}\u0000${record.spec.instanceType}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => {
    const [phase, type] = key.split("\u0000") as [string, string];
    return [phase, type, count];
  });
}
