import assert from "node:assert/strict";
import { VM_READY_CONDITION } from "../../kube/annotations.js";
import { memoryWorld, podWithVm } from "../../test-support/memory-cluster.js";
import { replaceInstance } from "./replace.js";
import { setFound } from "./step.js";

describe("lifecycle: replacing a lost VM", () => {
  let { cluster, cloud, steps } = memoryWorld();
  beforeEach(() => ({ cluster, cloud, steps } = memoryWorld()));

  it("deletes what is left of a dying VM, tells the pod, and asks for the next under a new name", async () => {
    const state = await podWithVm(cluster, steps, "a");
    const lost = state.found!.id;
    setFound(state, { ...state.found!, state: "stopping", message: "host maintenance" });
    await replaceInstance(steps, state, true);
    assert.equal(cloud.instances.has(lost), false);
    const record = cluster.records.get("ns/a")!;
    assert.equal(record.spec.instanceName, "pp-uid-a-r1");
    assert.equal(record.status?.phase, "Creating");
    assert.equal(record.status?.instanceID, null);
    assert.match(record.status!.message!, /is stopping: host maintenance; replacing it/);
    assert.equal(cluster.pods.get("ns/a")!.status!.conditions!.find((c) => c.type === VM_READY_CONDITION)?.reason, "VMLost");
    assert.deepEqual(cluster.reasons, ["VMLost"]);
    assert.equal(state.instance.kind, "unknown");
  });

  it("deletes nothing when the VM no longer exists", async () => {
    const state = await podWithVm(cluster, steps, "a");
    await cloud.delete(state.found!.id);
    cloud.calls.length = 0;
    setFound(state, undefined);
    await replaceInstance(steps, state, false);
    assert.deepEqual(cloud.calls, []);
    assert.match(cluster.records.get("ns/a")!.status!.message!, /no longer exists/);
  });
});
