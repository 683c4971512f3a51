import assert from "node:assert/strict";
import { ApiException } from "@kubernetes/client-node";
import { TAG } from "../../providers/types.js";
import { memoryWorld, podWithVm, stateIn } from "../../test-support/memory-cluster.js";
import { teardown } from "./teardown.js";

describe("lifecycle: teardown", () => {
  let { cluster, cloud, steps } = memoryWorld();
  beforeEach(() => ({ cluster, cloud, steps } = memoryWorld()));

  it("deletes the recorded VM and any other tagged with the pod's UID, then releases the record", async () => {
    const state = await podWithVm(cluster, steps, "a");
    // a VM whose create answer was lost: tagged for the pod, named in no record
    await cloud.create({ name: "pp-uid-a-lost", instanceType: steps.policy().byPreference[0]!, userData: "", tags: { [TAG.cluster]: "c1", [TAG.podUid]: "uid-a" } });
    steps.readyMarks.set("ns/a", state.found!.id);
    await teardown(steps, stateIn(cluster, "a"));
    assert.equal(cloud.instances.size, 0);
    assert.equal(cluster.records.size, 0);
    assert.deepEqual(cluster.reasons, ["VMDeleted", "VMDeleted"]);
    assert.equal(steps.readyMarks.size, 0);
  });

  it("keeps the record Deleting with the reason when a delete fails, for the queue to retry", async () => {
    await podWithVm(cluster, steps, "a");
    cloud.delete = () => Promise.reject(new Error("cloud down"));
    await assert.rejects(teardown(steps, stateIn(cluster, "a")), /cloud down/);
    assert.equal(cluster.records.get("ns/a")!.status?.phase, "Deleting");
    assert.match(cluster.records.get("ns/a")!.status!.message!, /delete VM failed: cloud down/);
    assert.deepEqual(cluster.reasons, ["VMDeleteFailed"]);
  });

  it("is done when the record went meanwhile", async () => {
    const state = await podWithVm(cluster, steps, "a");
    cluster.patchRecordStatus = () => Promise.reject(new ApiException(404, "not found", undefined, {}));
    await teardown(steps, state);
    assert.equal(state.record, undefined);
    assert.equal(cloud.instances.size, 1, "the garbage collector takes the VM once no record holds it");
  });
});
