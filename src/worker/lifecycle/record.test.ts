import assert from "node:assert/strict";
import { ANNOTATION } from "../../kube/annotations.js";
import { MemoryCluster, stateIn, stepsOver } from "../../test-support/memory-cluster.js";
import { MemoryProvider } from "../../test-support/memory-provider.js";
import { createRecord } from "./record.js";

describe("lifecycle: the PeerPod record", () => {
  it("records the pod's node, the webhook's instance type, the provider and the first instance name", async () => {
    const cluster = new MemoryCluster();
    cluster.addPod("a");
    const state = stateIn(cluster, "a");
    await createRecord(stepsOver(cluster, new MemoryProvider("")), state);
    assert.deepEqual(cluster.records.get("ns/a")!.spec, { podUID: "uid-a", nodeName: "node-1", instanceType: "small", provider: "memory", instanceName: "pp-uid-a" });
    assert.deepEqual(state.record, cluster.records.get("ns/a"), "the step goes on with the apiserver's answer");
  });

  it("takes the policy's default type for a pod the webhook never saw", async () => {
    const cluster = new MemoryCluster();
    cluster.addPod("a");
    delete cluster.pods.get("ns/a")!.metadata!.annotations![ANNOTATION.instanceType];
    const steps = stepsOver(cluster, new MemoryProvider(""));
    await createRecord(steps, stateIn(cluster, "a"));
    assert.equal(cluster.records.get("ns/a")!.spec.instanceType, steps.policy().spec.defaultInstanceType ?? steps.policy().byPreference[0]!.name);
  });
});
