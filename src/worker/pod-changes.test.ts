import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../kube/annotations.js";
import { PodChanges } from "./pod-changes.js";

const pod = (overrides: { nodeName?: string; phase?: string; vmReady?: string; runtimeClassName?: string; scheduledAt?: string } = {}): V1Pod => ({
  metadata: { name: "web", namespace: "ns", uid: "u1" },
  spec: { containers: [], runtimeClassName: "runtimeClassName" in overrides ? overrides.runtimeClassName : "kata-remote", ...(overrides.nodeName ? { nodeName: overrides.nodeName } : {}) },
  status: {
    phase: overrides.phase ?? "Pending",
    conditions: [
      ...(overrides.vmReady ? [{ type: VM_READY_CONDITION, status: overrides.vmReady }] : []),
      ...(overrides.scheduledAt ? [{ type: "PodScheduled", status: "True", lastTransitionTime: new Date(overrides.scheduledAt) }] : []),
    ],
  },
});

describe("PodChanges", () => {
  it("passes on what may call for an action and drops status churn", () => {
    const changes = new PodChanges();
    assert.equal(changes.changed(pod(), false), "ns/web");
    assert.equal(changes.changed(pod(), false), undefined, "the same pod again");
    assert.equal(changes.changed(pod({ nodeName: "n1" }), false), "ns/web", "bound");
    assert.equal(changes.changed({ ...pod({ nodeName: "n1" }), metadata: { name: "web", namespace: "ns", uid: "u1", labels: { a: "b" } } }, false), undefined, "a label");
    assert.equal(changes.changed(pod({ nodeName: "n1", vmReady: "True" }), false), "ns/web", "its vm-ready condition");
    assert.equal(changes.changed(pod({ nodeName: "n1", vmReady: "True", phase: "Running" }), false), "ns/web", "its phase");
    assert.equal(changes.size, 1);
  });

  it("always passes a deletion on and forgets the pod", () => {
    const changes = new PodChanges();
    changes.changed(pod(), false);
    assert.equal(changes.changed(pod(), true), "ns/web");
    assert.equal(changes.size, 0);
    assert.equal(changes.changed(pod(), false), "ns/web", "a pod of the same name is news again");
  });

  it("ignores pods of no RuntimeClass", () => {
    assert.equal(new PodChanges().changed(pod({ runtimeClassName: undefined }), false), undefined);
  });

  it("times the binding it saw happen, else by PodScheduled, else now", () => {
    let now = 1000;
    const changes = new PodChanges(() => now);
    const scheduled = pod({ nodeName: "n1", scheduledAt: "2026-01-01T00:00:00Z" });
    assert.equal(changes.boundAt("ns/web", scheduled), Date.parse("2026-01-01T00:00:00Z"), "bound before this replica saw it");
    assert.equal(changes.boundAt("ns/web", pod({ nodeName: "n1" })), 1000, "nothing to go by");
    changes.changed(pod(), false);
    now = 5000;
    changes.changed(pod({ nodeName: "n1" }), false);
    now = 9000;
    assert.equal(changes.boundAt("ns/web", scheduled), 5000);
    changes.changed(pod(), true);
    assert.equal(changes.boundAt("ns/web", pod({ nodeName: "n1" })), 9000, "forgotten with the pod");
  });
});
