import assert from "node:assert/strict";
import type { InstanceType } from "../policy/schema.js";
import type { PeerPod } from "../kube/peerpod.js";
import { VmBudget } from "./vm-budget.js";

const type = (name: string, vcpus: number): InstanceType => ({ name, vcpus, memoryMiB: 1024, gpus: 0 }) as InstanceType;
const small = type("small", 1);
const large = type("large", 4);
const VCPUS: Record<string, number> = { small: 1, large: 4 };

function record(name: string, instanceType: string, instanceID?: string): PeerPod {
  return {
    apiVersion: "peerpods.io/v1alpha1",
    kind: "PeerPod",
    metadata: { name, namespace: "ns" },
    spec: { podUID: `uid-${name}`, nodeName: "n", instanceType, provider: "sim", instanceName: `pp-${name}` },
    ...(instanceID ? { status: { phase: "Ready", instanceID } } : {}),
  };
}

describe("VmBudget", () => {
  let records: PeerPod[];
  let budget: VmBudget;
  beforeEach(() => {
    records = [];
    budget = new VmBudget(() => records, (name) => VCPUS[name] ?? 0);
  });

  it("lets everything through when the policy sets no limits", () => {
    records = Array.from({ length: 50 }, (_, i) => record(`p${i}`, "large", `i-${i}`));
    assert.deepEqual(budget.take("ns/new", large, {}), { ok: true });
  });

  it("counts recorded VMs and creates begun, but not records without a VM nor the asking pod", () => {
    records = [record("a", "large", "i-a"), record("b", "small"), record("c", "small", "i-c")];
    assert.deepEqual(budget.usage("ns/c"), { vms: 1, vcpus: 4 });
    assert.deepEqual(budget.take("ns/b", small, { maxVMs: 3 }), { ok: true });
    assert.deepEqual(budget.usage("ns/x"), { vms: 3, vcpus: 6 });
    // a create begun before its record reached the cache counts too, once
    assert.deepEqual(budget.take("ns/d", large, { maxVMs: 4 }), { ok: true });
    records.push(record("d", "large", "i-d"));
    assert.deepEqual(budget.usage("ns/x"), { vms: 4, vcpus: 10 });
  });

  it("turns away the VM that would pass maxVMs or maxVCPUs, says first only once, and frees room on release", () => {
    records = [record("a", "small", "i-a")];
    assert.deepEqual(budget.take("ns/b", small, { maxVMs: 2 }), { ok: true });
    const refused = budget.take("ns/c", small, { maxVMs: 2 });
    assert.deepEqual(refused, { ok: false, reason: "peer-pod limit maxVMs=2 reached: 2 VMs in use", first: true });
    assert.equal((budget.take("ns/c", small, { maxVMs: 2 }) as { first: boolean }).first, false);
    assert.deepEqual(budget.waiting(), ["ns/c"]);
    assert.match((budget.take("ns/d", large, { maxVCPUs: 5 }) as { reason: string }).reason, /maxVCPUs=5 would be exceeded: 2 vCPUs in use, instance type large needs 4/);
    budget.release("ns/b");
    assert.deepEqual(budget.take("ns/c", small, { maxVMs: 2 }), { ok: true });
    assert.deepEqual(budget.waiting(), ["ns/d"]);
  });
});
