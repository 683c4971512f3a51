import assert from "node:assert/strict";
import { TAG, type Instance } from "../providers/types.js";
import { findLeaks, recordsToRevisit, type LivePods } from "./gc.js";
import type { PeerPod } from "../kube/peerpod.js";

const now = Date.parse("2026-01-01T12:00:00Z");
const instance = (id: string, tags: Record<string, string>, ageMs: number): Instance => ({
  id,
  name: id,
  state: "running",
  ready: true,
  instanceType: "small",
  tags: { [TAG.cluster]: "c1", ...tags },
  createdAt: new Date(now - ageMs),
});
const record = (podUID: string, instanceID?: string): PeerPod => ({
  apiVersion: "peerpods.io/v1alpha1",
  kind: "PeerPod",
  metadata: { name: podUID, namespace: "ns" },
  spec: { podUID, nodeName: "n1", instanceType: "small", provider: "sim", instanceName: `pp-${podUID}` },
  status: { phase: "Ready", instanceID: instanceID ?? null },
});

const live = (uids: string[], names: string[] = []): LivePods => ({ uids: new Set(uids), names: new Set(names) });

describe("garbage collection", () => {
  const grace = 120_000;

  it("deletes old instances whose pod is gone, and only those", () => {
    const instances = [
      instance("live", { [TAG.podUid]: "u-live" }, 600_000),
      instance("gone-old", { [TAG.podUid]: "u-gone" }, 600_000),
      instance("gone-young", { [TAG.podUid]: "u-gone2" }, 60_000),
      instance("no-uid-old", {}, 600_000),
      instance("pool", { [TAG.pool]: "small" }, 600_000),
    ];
    assert.deepEqual(findLeaks(instances, live(["u-live"]), now, grace).map((i) => i.id), ["gone-old", "no-uid-old"]);
  });

  it("spares an instance without a pod UID whose namespace/name tags name a live pod", () => {
    const tagged = (name: string) => instance(name, { [TAG.namespace]: "ns", [TAG.podName]: name }, 600_000);
    assert.deepEqual(findLeaks([tagged("alive"), tagged("gone")], live([], ["ns/alive"]), now, grace).map((i) => i.id), ["gone"]);
  });

  it("counts the grace period from the instance's creation, inclusive", () => {
    assert.equal(findLeaks([instance("a", { [TAG.podUid]: "x" }, grace)], live([]), now, grace).length, 1);
    assert.equal(findLeaks([instance("a", { [TAG.podUid]: "x" }, grace - 1)], live([]), now, grace).length, 0);
  });

  it("revisits records whose pod is gone or whose VM vanished", () => {
    const records = [record("ok", "i-1"), record("podless", "i-2"), record("vm-lost", "i-3"), record("creating")];
    const revisit = recordsToRevisit(records, new Set(["ok", "vm-lost", "creating"]), new Set(["i-1", "i-2"]));
    assert.deepEqual(revisit.map((r) => r.spec.podUID), ["podless", "vm-lost"]);
  });
});
