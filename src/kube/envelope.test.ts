import assert from "node:assert/strict";
import { describeEnvelope, memoryMiBOf, podEnvelope, vcpusOf } from "./envelope.js";

const gpus = ["nvidia.com/gpu"];
const r = (requests?: Record<string, string>, limits?: Record<string, string>) => ({ resources: { requests, limits } });

describe("podEnvelope", () => {
  it("sums app containers", () => {
    const e = podEnvelope({ containers: [r({ cpu: "500m", memory: "256Mi" }), r({ cpu: "700m", memory: "256Mi" })], initContainers: [] }, gpus);
    assert.deepEqual(e, { cpuMillis: 1200, memoryBytes: 512 * 1024 * 1024, gpus: 0 });
    assert.equal(vcpusOf(e), 2);
    assert.equal(memoryMiBOf(e), 512);
  });

  it("takes the larger of the app sum and the biggest init container, per resource", () => {
    const e = podEnvelope({ containers: [r({ cpu: "1", memory: "1Gi" })], initContainers: [r({ cpu: "3", memory: "100Mi" }), r({ cpu: "2" })] }, gpus);
    assert.equal(e.cpuMillis, 3000);
    assert.equal(e.memoryBytes, 1024 ** 3);
  });

  it("does not sum regular init containers (they run one at a time)", () => {
    const e = podEnvelope({ containers: [], initContainers: [r({ cpu: "1" }), r({ cpu: "1" })] }, gpus);
    assert.equal(e.cpuMillis, 1000);
  });

  it("adds sidecars (restartPolicy Always) to the app containers and to later init containers", () => {
    const sidecar = { ...r({ cpu: "500m" }), restartPolicy: "Always" };
    const e = podEnvelope({ containers: [r({ cpu: "1" })], initContainers: [sidecar, r({ cpu: "2" })] }, gpus);
    assert.equal(e.cpuMillis, 2500);
    const appDominated = podEnvelope({ containers: [r({ cpu: "4" })], initContainers: [sidecar] }, gpus);
    assert.equal(appDominated.cpuMillis, 4500);
  });

  it("uses a limit where there is no request", () => {
    const e = podEnvelope({ containers: [r(undefined, { cpu: "2", memory: "1Gi" }), r({ cpu: "100m" }, { cpu: "4" })], initContainers: [] }, gpus);
    assert.equal(e.cpuMillis, 2100);
    assert.equal(e.memoryBytes, 1024 ** 3);
  });

  it("counts GPUs of every configured resource name", () => {
    const e = podEnvelope({ containers: [r({ "nvidia.com/gpu": "1" }), r(undefined, { "amd.com/gpu": "2" })], initContainers: [] }, ["nvidia.com/gpu", "amd.com/gpu"]);
    assert.equal(e.gpus, 3);
  });

  it("lets pod-level resources override the container sum where set", () => {
    const e = podEnvelope({ containers: [r({ cpu: "1", memory: "1Gi" })], initContainers: [], podResources: { requests: { cpu: "3" } } }, gpus);
    assert.equal(e.cpuMillis, 3000);
    assert.equal(e.memoryBytes, 1024 ** 3);
  });

  it("describes itself for messages", () => {
    assert.equal(describeEnvelope({ cpuMillis: 1500, memoryBytes: 3 * 1024 * 1024, gpus: 1 }), "1500m CPU (2 vCPU), 3 MiB memory, 1 GPU");
  });
});
