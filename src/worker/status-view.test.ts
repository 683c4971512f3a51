import assert from "node:assert/strict";
import { PEERPOD_API_VERSION, PEERPOD_KIND, type PeerPod, type PeerPodPhase } from "../kube/peerpod.js";
import { workerView } from "../metrics/worker.js";
import { countByPhase, publishWorkerView } from "./status-view.js";

const record = (instanceType: string, phase?: PeerPodPhase): PeerPod => ({
  apiVersion: PEERPOD_API_VERSION,
  kind: PEERPOD_KIND,
  metadata: { name: "p", namespace: "ns" },
  spec: { podUID: "u", nodeName: "n", instanceType, provider: "sim", instanceName: "pp-u" },
  ...(phase ? { status: { phase } } : {}),
});

describe("the worker's status view", () => {
  it("counts records by phase and instance type, a record without status as Pending", () => {
    const counts = countByPhase([record("small", "Ready"), record("small", "Ready"), record("large", "Ready"), record("small")]);
    assert.deepEqual(counts.sort(), [["Pending", "small", 1], ["Ready", "large", 1], ["Ready", "small", 2]]);
  });

  it("shows the queue and the records on /metrics only while published", () => {
    const unpublish = publishWorkerView({ depth: 3 }, () => [record("small", "Creating")]);
    assert.equal(workerView.queueDepth?.(), 3);
    assert.deepEqual(workerView.vmCounts?.(), [["Creating", "small", 1]]);
    unpublish();
    assert.equal(workerView.queueDepth, undefined);
    assert.equal(workerView.vmCounts, undefined);
  });
});
