import assert from "node:assert/strict";
import { VM_READY_CONDITION } from "../../kube/annotations.js";
import { REFUSED_CONDITION } from "../../kube/peerpod.js";
import { ProviderError } from "../../providers/types.js";
import { memoryWorld, recordedPod } from "../../test-support/memory-cluster.js";
import { isRefusal, refuse } from "./refuse.js";

describe("lifecycle: a VM the provider refuses", () => {
  it("takes only an invalid request as a refusal", () => {
    assert.equal(isRefusal(new ProviderError("invalid", "user data too large")), true);
    for (const kind of ["retryable", "quota", "notFound"] as const) assert.equal(isRefusal(new ProviderError(kind, "x")), false);
    assert.equal(isRefusal(new Error("invalid")), false);
  });

  it("tells the pod why, then marks the record refused, last", async () => {
    const { cluster, steps } = memoryWorld();
    const state = await recordedPod(cluster, steps, "a");
    await refuse(steps, state, "create", new ProviderError("invalid", "user data too large"));
    const pod = cluster.pods.get("ns/a")!.status!.conditions!.find((c) => c.type === VM_READY_CONDITION);
    assert.deepEqual([pod?.status, pod?.reason], ["False", "VMRefused"]);
    const status = cluster.records.get("ns/a")!.status!;
    assert.equal(status.phase, "Failed");
    assert.match(status.message!, /the provider refused the pod's VM: user data too large/);
    assert.deepEqual(status.conditions?.map((c) => [c.type, c.status, c.reason]), [[REFUSED_CONDITION, "True", "ProviderInvalid"]]);
    assert.deepEqual(cluster.reasons, ["VMRefused"]);
  });

  it("leaves the record as it was when the pod cannot be told, so the next reconcile tries again", async () => {
    const { cluster, steps } = memoryWorld();
    const state = await recordedPod(cluster, steps, "a");
    cluster.setPodCondition = () => Promise.reject(new Error("apiserver unavailable"));
    await assert.rejects(refuse(steps, state, "create", new ProviderError("invalid", "user data too large")), /apiserver unavailable/);
    assert.equal(cluster.records.get("ns/a")!.status, undefined);
  });
});
