import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../kube/annotations.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy } from "../policy/schema.js";
import { KILL_SLACK_MS, decide, podFacts, recordFacts, type Action, type InstanceFacts, type PodFacts, type RecordFacts } from "./decide.js";
import { REFUSED_CONDITION, VM_FINALIZER, instanceName, nextInstanceName, type PeerPod } from "../kube/peerpod.js";

const pod = (overrides: Partial<PodFacts> = {}): PodFacts => ({ uid: "u1", peer: true, bound: true, done: false, vmReady: false, ...overrides });
const record = (overrides: Partial<RecordFacts> = {}): RecordFacts => ({
  podUID: "u1",
  phase: "Creating",
  instanceID: "i-1",
  deleting: false,
  finalized: false,
  refused: false,
  pooled: false,
  fresh: true,
  markedReadyHere: false,
  ...overrides,
});
const unknown: InstanceFacts = { kind: "unknown" };
const absent: InstanceFacts = { kind: "absent" };
const booting: InstanceFacts = { kind: "present", state: "pending", ready: false };
const ready: InstanceFacts = { kind: "present", state: "running", ready: true };

const cases: [string, PodFacts | undefined, RecordFacts | undefined, InstanceFacts, Action["kind"]][] = [
  ["nothing at all", undefined, undefined, unknown, "none"],
  ["pod not bound yet", pod({ bound: false }), undefined, unknown, "none"],
  ["pod of another runtime class", pod({ peer: false }), undefined, unknown, "none"],
  ["record of a pod no longer a peer pod by policy: its VM stays", pod({ peer: false, vmReady: true }), record({ phase: "Ready" }), ready, "none"],
  ["pod bound, no record: record first", pod(), undefined, unknown, "createRecord"],
  ["pod done before any record", pod({ done: true }), undefined, unknown, "none"],
  ["record without instance id", pod(), record({ instanceID: undefined, phase: undefined }), unknown, "createInstance"],
  ["failed create is retried", pod(), record({ instanceID: undefined, phase: "Failed" }), unknown, "createInstance"],
  ["instance id known, not looked up", pod(), record(), unknown, "lookUpInstance"],
  ["VM booting", pod(), record(), booting, "waitReady"],
  ["VM ready, record not", pod(), record(), ready, "markReady"],
  ["pool VM recorded, not handed over yet", pod(), record(), { kind: "present", state: "running", ready: true, pooled: true }, "claimInstance"],
  ["pool VM recorded but its agent is gone", pod(), record(), { kind: "present", state: "running", ready: false, pooled: true }, "replaceInstance"],
  ["pool VM recorded, pod gone before the hand-over", undefined, record(), { kind: "present", state: "running", ready: true, pooled: true }, "teardown"],
  ["record Ready but pod condition lost", pod({ vmReady: false }), record({ phase: "Ready" }), ready, "markReady"],
  ["all done", pod({ vmReady: true }), record({ phase: "Ready" }), ready, "none"],
  ["all done, VM not asked after", pod({ vmReady: true }), record({ phase: "Ready" }), unknown, "none"],
  ["all done but a listing missed the VM", pod({ vmReady: true }), record({ phase: "Ready" }), { kind: "unknown", verify: true }, "lookUpInstance"],
  ["VM deleted behind our back", pod({ vmReady: true }), record({ phase: "Ready" }), absent, "replaceInstance"],
  ["VM terminated behind our back", pod(), record({ phase: "Ready" }), { kind: "present", state: "terminated", ready: false }, "replaceInstance"],
  ["VM stopping behind our back", pod(), record(), { kind: "present", state: "stopping", ready: false }, "replaceInstance"],
  ["pod gone", undefined, record(), unknown, "teardown"],
  ["pod gone while VM is being created", undefined, record({ instanceID: undefined }), unknown, "teardown"],
  ["pod terminating past its kubelet's deadline", pod({ done: true }), record({ phase: "Ready" }), ready, "teardown"],
  ["pod terminating within its grace period: its containers stop in the VM first", pod({ stoppingForMs: 20_000 }), record({ phase: "Ready" }), ready, "waitStopped"],
  ["pod terminating, record deleted by hand", pod({ stoppingForMs: 20_000 }), record({ deleting: true }), ready, "teardown"],
  ["pod replaced by one with the same name", pod({ uid: "u2" }), record(), ready, "teardown"],
  ["record deleted by hand while the pod lives", pod(), record({ deleting: true }), ready, "teardown"],
  ["record deleting and released", undefined, record({ deleting: true, finalized: true }), unknown, "none"],
  ["record released by hand but not deleted, pod gone", undefined, record({ finalized: true }), unknown, "teardown"],
  ["pooled type, the informer's record: read it before claiming", pod(), record({ instanceID: undefined, pooled: true, fresh: false }), unknown, "refreshRecord"],
  ["pooled type, the apiserver's record", pod(), record({ instanceID: undefined, pooled: true }), unknown, "createInstance"],
  ["cold create on the informer's record", pod(), record({ instanceID: undefined, fresh: false }), unknown, "createInstance"],
  ["VM lost, the informer's record: read it before replacing", pod(), record({ fresh: false }), absent, "refreshRecord"],
  ["VM ready, record not but marked ready here: the informer lags", pod(), record({ markedReadyHere: true, fresh: false }), ready, "refreshRecord"],
  ["VM ready, the apiserver's record not Ready though marked here", pod(), record({ markedReadyHere: true }), ready, "markReady"],
  ["the provider refused the pod's VM: no more attempts", pod(), record({ instanceID: undefined, phase: "Failed", refused: true }), unknown, "none"],
  ["refused, pod gone: the record is still released", undefined, record({ instanceID: undefined, phase: "Failed", refused: true }), unknown, "teardown"],
];

describe("decide", () => {
  for (const [name, podState, recordState, instance, expected] of cases) {
    it(`${name} → ${expected}`, () => {
      assert.equal(decide(podState, recordState, instance).kind, expected);
    });
  }

  it("says where a VM comes from, what a replacement deletes, and whether the record is marked ready", () => {
    assert.deepEqual(decide(pod(), record({ instanceID: undefined, pooled: true }), unknown), { kind: "createInstance", from: "pool" });
    assert.deepEqual(decide(pod(), record({ instanceID: undefined }), unknown), { kind: "createInstance", from: "cloud" });
    assert.deepEqual(decide(pod(), record(), absent), { kind: "replaceInstance", deleteLost: false });
    assert.deepEqual(decide(pod(), record(), { kind: "present", state: "stopping", ready: false }), { kind: "replaceInstance", deleteLost: true });
    assert.deepEqual(decide(pod(), record(), { kind: "present", state: "running", ready: false, pooled: true }), { kind: "replaceInstance", deleteLost: true });
    assert.deepEqual(decide(pod(), record(), ready), { kind: "markReady", patchRecord: true });
    assert.deepEqual(decide(pod({ vmReady: false }), record({ phase: "Ready" }), ready), { kind: "markReady", patchRecord: false });
  });

  it("never creates a VM for a pod that is not live", () => {
    for (const podState of [undefined, pod({ done: true }), pod({ uid: "other" })]) {
      for (const instance of [unknown, absent, booting, ready]) {
        const records = podState?.uid === "other" ? [record(), record({ instanceID: undefined })] : [undefined, record(), record({ instanceID: undefined })];
        for (const recordState of records) {
          const action = decide(podState, recordState, instance).kind;
          assert.ok(!["createInstance", "replaceInstance", "createRecord"].includes(action), `${JSON.stringify({ podState, recordState, instance })} → ${action}`);
        }
      }
    }
  });
});

describe("facts", () => {
  const policy = compilePolicy(defaultPolicy(), 1);
  const v1pod = (status: V1Pod["status"], meta: Partial<NonNullable<V1Pod["metadata"]>> = {}): V1Pod => ({
    metadata: { name: "p", namespace: "ns", uid: "u1", ...meta },
    spec: { containers: [], nodeName: "n1", runtimeClassName: "kata-remote" },
    status,
  });

  it("reads bound, done and the vm-ready condition off a pod", () => {
    assert.deepEqual(podFacts(v1pod({ phase: "Pending" }), policy), { uid: "u1", peer: true, bound: true, done: false, vmReady: false });
    assert.equal(podFacts(v1pod({}, { namespace: "kube-system" }), policy).peer, false);
    assert.equal(podFacts({ ...v1pod({}), spec: { containers: [], runtimeClassName: "runc" } }, policy).peer, false);
    assert.equal(podFacts(v1pod({ phase: "Succeeded" }), policy).done, true);
    assert.equal(podFacts(v1pod({ phase: "Failed" }), policy).done, true);
    const now = Date.parse("2026-12-06T00:00:00Z");
    const terminating = (graceLeftMs: number) => podFacts(v1pod({ phase: "Running" }, { deletionTimestamp: new Date(now + graceLeftMs) }), policy, now);
    assert.deepEqual([terminating(30_000).done, terminating(30_000).stoppingForMs], [false, 30_000 + KILL_SLACK_MS], "within the grace period");
    assert.deepEqual([terminating(-KILL_SLACK_MS).done, terminating(-KILL_SLACK_MS).stoppingForMs], [true, undefined], "past the deadline and the slack");
    assert.equal(podFacts(v1pod({ phase: "Succeeded" }, { deletionTimestamp: new Date(now + 30_000) }), policy, now).done, true, "a finished pod needs no grace");
    assert.equal(podFacts(v1pod({ conditions: [{ type: VM_READY_CONDITION, status: "True" }] }), policy).vmReady, true);
    assert.equal(podFacts(v1pod({ conditions: [{ type: VM_READY_CONDITION, status: "False" }] }), policy).vmReady, false);
  });

  it("reads a record's phase, instance and finalizer", () => {
    const peerPod: PeerPod = {
      apiVersion: "peerpods.io/v1alpha1",
      kind: "PeerPod",
      metadata: { name: "p", namespace: "ns", finalizers: [VM_FINALIZER] },
      spec: { podUID: "u1", nodeName: "n1", instanceType: "small", provider: "sim", instanceName: instanceName("u1") },
      status: { phase: "Creating", instanceID: null },
    };
    const context = { pooled: false, fresh: true, markedReadyHere: false };
    assert.deepEqual(recordFacts(peerPod, context), { podUID: "u1", phase: "Creating", instanceID: undefined, deleting: false, finalized: false, refused: false, ...context });
    assert.equal(recordFacts({ ...peerPod, metadata: { ...peerPod.metadata, finalizers: [] } }, context).finalized, true);
    const refused = { ...peerPod, status: { phase: "Failed" as const, conditions: [{ type: REFUSED_CONDITION, status: "True" as const }] } };
    assert.equal(recordFacts(refused, context).refused, true);
  });

  it("names replacement VMs with an increasing number", () => {
    assert.equal(instanceName("u1"), "pp-u1");
    assert.equal(nextInstanceName("u1", "pp-u1"), "pp-u1-r1");
    assert.equal(nextInstanceName("u1", "pp-u1-r1"), "pp-u1-r2");
  });
});
