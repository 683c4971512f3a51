import assert from "node:assert/strict";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema } from "../policy/schema.js";
import { RESERVATION_TTL_MS, SchedulingState, type PodObject } from "./state.js";

const policy = (spec: Record<string, unknown> = {}, generation = 1) =>
  compilePolicy(policySpecSchema.parse({ instanceTypes: [{ name: "m", vcpus: 2, memoryMiB: 1024 }], ...spec }), generation);

const pod = (uid: string, nodeName?: string, phase = "Running", runtimeClassName = "kata-remote", namespace = "ns"): PodObject => ({
  metadata: { uid, namespace, annotations: { "peerpods.io/instance-type": "m" } },
  spec: { runtimeClassName, nodeName },
  status: { phase },
});

describe("SchedulingState", () => {
  it("counts bound, unfinished peer pods per node and cluster-wide", () => {
    const state = new SchedulingState(policy());
    state.upsertPod(pod("a", "n1"));
    state.upsertPod(pod("b", "n1", "Pending"));
    state.upsertPod(pod("c", "n2"));
    state.upsertPod(pod("pending"));
    state.upsertPod(pod("done", "n1", "Succeeded"));
    state.upsertPod(pod("runc", "n1", "Running", "runc"));
    state.upsertPod(pod("system", "n1", "Running", "kata-remote", "kube-system"));
    state.upsertPod({ metadata: { uid: "plain" }, spec: { nodeName: "n1" } });
    assert.equal(state.vmsOn("n1"), 2);
    assert.equal(state.vmsOn("n2"), 1);
    assert.deepEqual(state.usage(), { vms: 3, vcpus: 6 });
  });

  it("follows updates and deletes without double counting", () => {
    const state = new SchedulingState(policy());
    state.upsertPod(pod("a"));
    state.upsertPod(pod("a", "n1"));
    state.upsertPod(pod("a", "n1"));
    assert.equal(state.vmsOn("n1"), 1);
    state.upsertPod(pod("a", "n1", "Failed"));
    assert.equal(state.vmsOn("n1"), 0);
    state.upsertPod(pod("b", "n1"));
    state.deletePod(pod("b", "n1"));
    state.deletePod(pod("never-seen", "n1"));
    assert.deepEqual(state.usage(), { vms: 0, vcpus: 0 });
  });

  it("re-evaluates pods and nodes when the policy changes", () => {
    const state = new SchedulingState(policy());
    state.upsertPod(pod("a", "n1", "Running", "kata-qemu"));
    state.upsertPod(pod("b", "n1"));
    state.upsertNode({ metadata: { name: "n1", labels: { pool: "peer" }, annotations: { "peerpods.io/vms-per-node": "3" } } });
    state.upsertNode({ metadata: { name: "n2" } });
    assert.equal(state.vmsOn("n1"), 1);
    state.setPolicy(
      policy({
        runtimeClassNames: ["kata-remote", "kata-qemu"],
        instanceTypes: [{ name: "m", vcpus: 8, memoryMiB: 1024 }],
        nodes: { selector: { matchLabels: { pool: "peer" } }, vmsPerNode: 5 },
      }, 2),
    );
    assert.deepEqual(state.usage(), { vms: 2, vcpus: 16 });
    assert.equal(state.vmsOn("n1"), 2);
    assert.equal(state.node("n1")?.matches, true);
    assert.equal(state.node("n1")?.slots, 3, "the annotation overrides nodes.vmsPerNode");
    assert.equal(state.node("n2")?.matches, false);
    assert.equal(state.node("n2")?.slots, 5);
    state.deleteNode({ metadata: { name: "n2" } });
    assert.equal(state.node("n2"), undefined);
  });

  it("holds reservations until the binding is seen, the pod is deleted, or the TTL ends", () => {
    let now = 1000;
    const state = new SchedulingState(policy(), () => now);
    state.reserve("a", 2);
    state.reserve("b", 2);
    state.reserve("c", 2);
    state.reserve("c", 2);
    assert.deepEqual(state.usage(), { vms: 3, vcpus: 6 });
    assert.deepEqual(state.usage("a"), { vms: 2, vcpus: 4 });
    state.upsertPod(pod("a", "n1"));
    assert.deepEqual(state.usage(), { vms: 3, vcpus: 6 }, "a moved from reserved to bound");
    state.deletePod(pod("b"));
    assert.deepEqual(state.usage(), { vms: 2, vcpus: 4 });
    now += RESERVATION_TTL_MS;
    assert.deepEqual(state.usage(), { vms: 1, vcpus: 2 }, "c expired");
    state.reserve("a", 2);
    assert.deepEqual(state.usage(), { vms: 1, vcpus: 2 }, "a bound pod is not reserved again");
  });
});
