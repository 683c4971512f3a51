import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION } from "../kube/annotations.js";
import { instanceName, PEERPOD_API_VERSION, PEERPOD_KIND, type PeerPod } from "../kube/peerpod.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy, parsePolicy } from "../policy/schema.js";
import { TAG, type Instance } from "../providers/types.js";
import { podInstanceSpec } from "../worker/lifecycle/launch.js";
import { pickLive, planInstance, podRef, workerRecord, type VmRequest } from "./vms.js";

const policy = compilePolicy(defaultPolicy(), 1);
const request = (overrides: Partial<VmRequest>): VmRequest => ({ sandboxId: "sbx", target: { name: "web", namespace: "shop", ignored: [] }, clusterId: "c1", ...overrides });
const typeOf = (plan: ReturnType<typeof planInstance>): string | undefined => (plan.ok ? plan.spec.instanceType.name : undefined);

describe("planning a sandbox's VM", () => {
  it("takes the worker's recorded type first, then the webhook's, then the shim's annotations", () => {
    const target = { name: "web", namespace: "shop", machineType: "large", ignored: [] };
    const record = { podUID: "u1", instanceName: "pp-u1", instanceType: "small" };
    assert.equal(typeOf(planInstance(request({ target, pod: { uid: "u1", instanceType: "medium" }, record }), policy)), "small");
    assert.equal(typeOf(planInstance(request({ target, pod: { uid: "u1", instanceType: "medium" } }), policy)), "medium");
    assert.equal(typeOf(planInstance(request({ target, pod: { uid: "u1", instanceType: "gone-from-catalog" } }), policy)), "large");
    assert.equal(typeOf(planInstance(request({ target }), policy)), "large");
  });

  it("sizes from default_vcpus/default_memory only when no machine type is named", () => {
    assert.equal(typeOf(planInstance(request({ target: { vcpus: 2, memoryMiB: 1024, ignored: [] } }), policy)), "medium");
    assert.equal(typeOf(planInstance(request({ target: { machineType: "small", vcpus: 4, memoryMiB: 2048, ignored: [] } }), policy)), "small");
  });

  it("stays within the policy: a type not allowed in the namespace is refused with the reason", () => {
    const parsed = parsePolicy({ allowedInstanceTypes: { shop: ["small"] } });
    assert.ok(parsed.ok);
    const plan = planInstance(request({ target: { name: "web", namespace: "shop", machineType: "large", ignored: [] } }), compilePolicy(parsed.spec, 1));
    assert.equal(plan.ok, false);
    assert.match(plan.ok ? "" : plan.reason, /"large" is not allowed in namespace "shop"; allowed types: small/);
  });

  it("names and tags the VM as the worker does for a known pod, and after the sandbox otherwise", () => {
    const known = planInstance(request({ pod: { uid: "u1" }, record: { podUID: "u1", instanceName: "pp-u1-r2", instanceType: "small" } }), policy);
    assert.ok(known.ok);
    assert.equal(known.spec.name, "pp-u1-r2");
    assert.deepEqual(known.spec.tags, { [TAG.cluster]: "c1", [TAG.instanceType]: "small", [TAG.podUid]: "u1", [TAG.namespace]: "shop", [TAG.podName]: "web" });
    assert.deepEqual(JSON.parse(known.spec.userData), { cluster: "c1", namespace: "shop", pod: "web", podUID: "u1" });

    const unknown = planInstance(request({ target: { machineType: "small", ignored: [] } }), policy);
    assert.ok(unknown.ok);
    assert.equal(unknown.spec.name, "pp-sandbox-sbx");
    assert.deepEqual(unknown.spec.tags, { [TAG.cluster]: "c1", [TAG.instanceType]: "small" });
  });

  it("asks for the very VM the worker asks for, whichever of them gets to the pod first", () => {
    const pod: V1Pod = {
      metadata: { name: "web", namespace: "shop", uid: "u1", annotations: { [ANNOTATION.instanceType]: "medium" } },
      spec: { nodeName: "n1", runtimeClassName: "kata-remote", containers: [{ name: "app", image: "busybox", command: ["sh", "-c"], args: ["sleep 1d"] }] },
    };
    const record: PeerPod = {
      apiVersion: PEERPOD_API_VERSION,
      kind: PEERPOD_KIND,
      metadata: { name: "web", namespace: "shop" },
      spec: { podUID: "u1", nodeName: "n1", instanceType: "medium", provider: "sim", instanceName: instanceName("u1") },
    };
    const fromWorker = podInstanceSpec(pod, record, policy, "c1");
    const target = { name: "web", namespace: "shop", uid: "u1", ignored: [] };
    const beforeTheRecord = planInstance(request({ target, pod: podRef(pod)! }), policy);
    const afterTheRecord = planInstance(request({ target, pod: podRef(pod)!, record: workerRecord(record) }), policy);
    assert.deepEqual(beforeTheRecord, { ok: true, spec: fromWorker });
    assert.deepEqual(afterTheRecord, { ok: true, spec: fromWorker });
    assert.deepEqual(JSON.parse(fromWorker.userData).command, ["sh", "-c", "sleep 1d"]);
  });

  it("attaches to a live instance: ready first, then the newest; never a dying one", () => {
    const vm = (id: string, state: Instance["state"], ready: boolean, at: number): Instance => ({ id, name: id, state, ready, instanceType: "small", tags: {}, createdAt: new Date(at) });
    assert.equal(pickLive([vm("old-ready", "running", true, 1), vm("new-pending", "pending", false, 2)])?.id, "old-ready");
    assert.equal(pickLive([vm("a", "pending", false, 1), vm("b", "pending", false, 2)])?.id, "b");
    assert.equal(pickLive([vm("x", "terminated", false, 3), vm("y", "stopping", false, 4)]), undefined);
  });
});
