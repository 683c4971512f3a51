import assert from "node:assert/strict";
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import type { PeerPod } from "../../src/kube/peerpod.js";
import { admission, progressLines, statusLine, type Snapshot } from "./timeline.js";

const pod = (nodeName?: string, conditions: { type: string; status: string; message?: string }[] = []): V1Pod => ({
  metadata: {
    name: "hello",
    namespace: "demo",
    annotations: {
      "peerpods.io/instance-type": "small",
      "io.katacontainers.config.hypervisor.default_vcpus": "1",
      "io.katacontainers.config.hypervisor.default_memory": "512",
      "peerpods.io/original-resources": JSON.stringify({ containers: { app: { requests: { cpu: "750m", memory: "384Mi" } } } }),
    },
  },
  spec: { nodeName, containers: [{ name: "app", resources: { requests: { "kata.peerpods.io/vm": "1" } } }] },
  status: { phase: nodeName ? "Running" : "Pending", conditions },
});

const record = (instanceID?: string): PeerPod => ({
  apiVersion: "peerpods.io/v1alpha1",
  kind: "PeerPod",
  metadata: { name: "hello", namespace: "demo" },
  spec: { podUID: "u", nodeName: "n1", instanceType: "small", provider: "qemu", instanceName: "pp-u" },
  status: { phase: instanceID ? "Creating" : "Pending", instanceID, agentEndpoint: "tcp:127.0.0.1:1" },
});

const event = (uid: string, reason: string, time: string): CoreV1Event => ({
  metadata: { uid },
  involvedObject: {},
  type: "Normal",
  reason,
  message: `${reason} message`,
  lastTimestamp: new Date(time),
  source: { component: "peerpods" },
});

const labels = (snapshot: Snapshot, reported: Set<string>): string[] => progressLines(snapshot, reported, (id) => `/vms/${id}/console.log`).map((l) => `${l.label}: ${l.text}`);

describe("the demo's timeline", () => {
  it("says which instance type the webhook chose for which requests, and what the pod asks of its node", () => {
    assert.equal(admission(pod()).text, "the webhook chose instance type small (1 vCPU, 512 MiB) for cpu 750m, memory 384Mi; the pod now asks its node for kata.peerpods.io/vm: 1");
  });

  it("reports each milestone once, in the pod's order, with Events oldest first", () => {
    const reported = new Set<string>();
    assert.deepEqual(labels({ pod: pod(), events: [] }, reported), []);
    assert.deepEqual(labels({ pod: pod("n1"), events: [event("e2", "B", "2026-01-01T00:00:02Z"), event("e1", "A", "2026-01-01T00:00:01Z")] }, reported), [
      "event: Normal A (peerpods): A message",
      "event: Normal B (peerpods): B message",
      "scheduled: bound to node n1",
    ]);
    assert.deepEqual(labels({ pod: pod("n1"), record: record(), events: [] }, reported), ["worker: PeerPod record demo/hello: creating a small VM with the qemu provider"]);
    assert.deepEqual(labels({ pod: pod("n1"), record: record("vm-1"), events: [] }, reported), ["VM booting: qemu VM vm-1 (small); console log: /vms/vm-1/console.log"]);
    const ready = pod("n1", [{ type: "peerpods.io/vm-ready", status: "True", message: "VM vm-1 is ready" }, { type: "Ready", status: "True" }]);
    assert.deepEqual(labels({ pod: ready, record: record("vm-1"), events: [] }, reported), ["VM ready: VM vm-1 is ready (agent tcp:127.0.0.1:1)", "pod Ready: demo/hello is Ready"]);
    assert.deepEqual(labels({ pod: ready, record: record("vm-1"), events: [] }, reported), []);
  });

  it("reports the binding before the worker's record when the pod was read before its binding showed", () => {
    assert.deepEqual(labels({ pod: pod(), record: record(), events: [] }, new Set()), [
      "scheduled: bound to node n1",
      "worker: PeerPod record demo/hello: creating a small VM with the qemu provider",
    ]);
  });

  it("does not call a pod Ready while its VM gate is False (what KWOK's stock stages would have faked)", () => {
    const reported = new Set<string>();
    const gated = pod("n1", [{ type: "peerpods.io/vm-ready", status: "False" }, { type: "Ready", status: "False" }]);
    assert.ok(!labels({ pod: gated, events: [] }, reported).some((line) => /Ready/.test(line)));
  });

  it("sums the pod up in one status line", () => {
    assert.equal(statusLine({ pod: pod("n1", [{ type: "Ready", status: "True" }]), record: record("vm-1"), events: [] }, "1m02s"), "demo/hello Running, Ready, on n1 · VM vm-1 Creating · up 1m02s");
    assert.equal(statusLine({ events: [] }, "5s"), "sample pod gone · up 5s");
  });
});
