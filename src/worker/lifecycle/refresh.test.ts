import assert from "node:assert/strict";
import { MemoryCluster, recordedPod, stateIn, stepsOver } from "../../test-support/memory-cluster.js";
import { MemoryProvider } from "../../test-support/memory-provider.js";
import { lookUpInstance, refreshRecord } from "./refresh.js";
import { setFound } from "./step.js";

describe("lifecycle: reading the record and the VM afresh", () => {
  let cluster: MemoryCluster;
  let cloud: MemoryProvider;

  beforeEach(async () => {
    cluster = new MemoryCluster();
    cloud = new MemoryProvider("unix:/agent");
    await recordedPod(cluster, stepsOver(cluster, cloud), "a");
  });

  const withVm = async (): Promise<string> => {
    const vm = await cloud.create({ name: "pp-uid-a", instanceType: stepsOver(cluster, cloud).policy().byPreference[0]!, userData: "", tags: {} });
    await cluster.patchRecordStatus(cluster.records.get("ns/a")!, { phase: "Creating", instanceID: vm.id });
    return vm.id;
  };

  it("keeps what it knows of the VM while the apiserver's record names the same one", async () => {
    const id = await withVm();
    const state = stateIn(cluster, "a");
    setFound(state, await cloud.get(id));
    await refreshRecord(stepsOver(cluster, cloud), state);
    assert.notEqual(state.record, state.cached, "the apiserver's copy");
    assert.equal(state.found?.id, id);
    assert.equal(state.instance.kind, "present");
  });

  it("forgets the VM when the apiserver's record names another one, or is gone", async () => {
    const state = stateIn(cluster, "a");
    await withVm();
    setFound(state, undefined);
    await refreshRecord(stepsOver(cluster, cloud), state);
    assert.equal(state.instance.kind, "unknown");
    assert.ok(state.record?.status?.instanceID);

    cluster.records.clear();
    setFound(state, undefined);
    await refreshRecord(stepsOver(cluster, cloud), state);
    assert.equal(state.record, undefined);
    assert.equal(state.instance.kind, "unknown");
  });

  it("looks the recorded VM up in the cloud", async () => {
    const id = await withVm();
    const state = stateIn(cluster, "a");
    await lookUpInstance(stepsOver(cluster, cloud), state);
    assert.deepEqual(state.instance, { kind: "present", state: "pending", ready: false, pooled: false });
    await cloud.delete(id);
    await lookUpInstance(stepsOver(cluster, cloud), state);
    assert.deepEqual(state.instance, { kind: "absent" });
  });
});
