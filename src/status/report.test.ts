import assert from "node:assert/strict";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema } from "../policy/schema.js";
import type { PeerPod } from "../kube/peerpod.js";
import { buildReport, renderReport, type NodeInfo, type PodInfo } from "./report.js";

const policy = compilePolicy(policySpecSchema.parse({ limits: { maxVMs: 5 }, warmPool: { pools: [{ instanceType: "small", min: 2, maxIdleSeconds: 600 }], maxIdleCost: 0.5 } }), 3);
const now = Date.parse("2026-01-01T00:10:00Z");

const pod = (name: string, node: string | undefined, type: string, extra: Partial<PodInfo["status"]> = {}): PodInfo => ({
  metadata: { name, namespace: "team", creationTimestamp: "2026-01-01T00:00:00Z", annotations: { "peerpods.io/instance-type": type } },
  spec: { runtimeClassName: "kata-remote", nodeName: node },
  status: { phase: "Running", ...extra },
});

const record = (name: string, phase: "Ready" | "Creating", readyTime?: string): PeerPod => ({
  apiVersion: "peerpods.io/v1alpha1",
  kind: "PeerPod",
  metadata: { name, namespace: "team" },
  spec: { podUID: "u", nodeName: "n1", instanceType: "small", provider: "sim", instanceName: "pp-u" },
  status: { phase, instanceID: `i-${name}`, readyTime },
});

const node = (name: string, capacity: number, allocatable: number): NodeInfo => ({
  metadata: { name },
  status: { capacity: { "kata.peerpods.io/vm": String(capacity) }, allocatable: { "kata.peerpods.io/vm": String(allocatable) } },
});

describe("status report", () => {
  const pods = [
    pod("a", "n1", "small"),
    pod("b", "n1", "large"),
    pod("c", undefined, "medium"),
    pod("done", "n2", "small", { phase: "Succeeded" }),
    { metadata: { name: "plain", namespace: "team" }, spec: { nodeName: "n1" } },
    // the policy's excludedNamespaces (kube-system by default): peerpods never handles these pods
    { ...pod("system", "n1", "small"), metadata: { name: "system", namespace: "kube-system", creationTimestamp: "2026-01-01T00:00:00Z" } },
  ];
  const report = buildReport(pods, [record("a", "Ready", "2026-01-01T00:00:07Z"), record("b", "Creating")], [node("n1", 10, 10), node("n2", 10, 0), { metadata: { name: "other" } }], policy, now);

  it("lists peer pods with their VM, age and time to ready", () => {
    assert.deepEqual(
      report.peerPods.map((r) => [r.pod, r.node, r.instanceType, r.phase, r.instanceId, r.ageSeconds, r.readySeconds]),
      [
        ["team/a", "n1", "small", "Ready", "i-a", 600, 7],
        ["team/b", "n1", "large", "Creating", "i-b", 600, null],
        ["team/c", "", "medium", "Unscheduled", "", 600, null],
        ["team/done", "n2", "small", "Pending", "", 600, null],
      ],
    );
  });

  it("counts live bound peer pods per advertising node", () => {
    assert.deepEqual(report.nodes, [
      { node: "n1", used: 2, allocatable: 10, capacity: 10 },
      { node: "n2", used: 0, allocatable: 0, capacity: 10 },
    ]);
  });

  it("reports quota use against the policy's limits", () => {
    assert.deepEqual(report.quota, { vms: { used: 2, limit: 5 }, vcpus: { used: 5, limit: null } });
  });

  it("shows the warm pool's targets and how many live peer pods got a pool VM", () => {
    const hit = { ...record("h", "Ready"), status: { phase: "Ready" as const, warmPool: "hit" as const } };
    const miss = { ...record("m", "Ready"), status: { phase: "Ready" as const, warmPool: "miss" as const } };
    const withClaims = buildReport(pods, [hit, miss, { ...hit, metadata: { name: "h2", namespace: "team" } }], [], policy, now);
    assert.deepEqual(withClaims.warmPool, { pools: [{ instanceType: "small", min: 2, max: 2, maxIdleSeconds: 600, hits: 2, misses: 1 }], maxIdleCost: 0.5 });
    assert.match(renderReport(withClaims), /TYPE\s+MIN\s+MAX\s+MAX IDLE\s+HITS\s+MISSES\nsmall\s+2\s+2\s+10m\s+2\s+1\nidle cost capped at 0.5\/h/);
  });

  it("renders tables a person can read", () => {
    const text = renderReport(report);
    assert.match(text, /NAMESPACE\/NAME\s+NODE\s+TYPE\s+VM PHASE\s+INSTANCE\s+AGE\s+READY AFTER/);
    assert.match(text, /team\/a\s+n1\s+small\s+Ready\s+i-a\s+10m\s+7s/);
    assert.match(text, /QUOTA {2}VMs 2\/5 {2}vCPUs 5\/∞/);
    assert.match(text, /POLICY generation 3, provider qemu, Spread, 10 VMs\/node/);
  });
});
