import assert from "node:assert/strict";
import { VM_READY_CONDITION } from "../../kube/annotations.js";
import { MemoryCluster, recordedPod, stepsOver } from "../../test-support/memory-cluster.js";
import { MemoryProvider } from "../../test-support/memory-provider.js";
import { markReady } from "./ready.js";
import { setFound, type State, type StepDeps } from "./step.js";

describe("lifecycle: telling the pod its VM is ready", () => {
  let cluster: MemoryCluster;
  let steps: StepDeps;

  const booted = async (): Promise<State> => {
    const cloud = new MemoryProvider("unix:/agent");
    steps = stepsOver(cluster, cloud, { bindTimes: { boundAt: () => Date.now() - 2500 } });
    const state = await recordedPod(cluster, steps, "a");
    const vm = await cloud.create({ name: "pp-uid-a", instanceType: steps.policy().byPreference[0]!, userData: "", tags: {} });
    cloud.boot(vm.id);
    setFound(state, await cloud.get(vm.id));
    return state;
  };
  const condition = () => cluster.pods.get("ns/a")!.status!.conditions!.find((c) => c.type === VM_READY_CONDITION);

  beforeEach(() => (cluster = new MemoryCluster()));

  it("records Ready with the VM's endpoint, sets the pod's condition, tells the pod once, and remembers it marked the VM", async () => {
    const state = await booted();
    await markReady(steps, state, true);
    const status = cluster.records.get("ns/a")!.status!;
    assert.equal(status.phase, "Ready");
    assert.equal(status.agentEndpoint, "unix:/agent");
    assert.equal(condition()?.status, "True");
    assert.deepEqual(cluster.reasons, ["VMReady"]);
    assert.equal(steps.readyMarks.get("ns/a"), state.found!.id);
    assert.equal(state.vmReady, true);
  });

  it("only sets the pod's condition again when that is all that went", async () => {
    const state = await booted();
    await markReady(steps, state, false);
    assert.equal(cluster.records.get("ns/a")!.status, undefined);
    assert.equal(condition()?.status, "True");
    assert.deepEqual(cluster.reasons, []);
    assert.equal(steps.readyMarks.size, 0);
  });
});
