import assert from "node:assert/strict";
import { PEERPOD_API_VERSION, PEERPOD_KIND, type PeerPod } from "../kube/peerpod.js";
import { RecordChanges } from "./record-changes.js";

const record = (metadata: Partial<PeerPod["metadata"]> = {}, status: PeerPod["status"] = {}): PeerPod => ({
  apiVersion: PEERPOD_API_VERSION,
  kind: PEERPOD_KIND,
  metadata: { name: "web", namespace: "ns", uid: "r1", generation: 1, ...metadata },
  spec: { podUID: "u1", nodeName: "n1", instanceType: "small", provider: "sim", instanceName: "pp-u1" },
  status,
});

describe("RecordChanges", () => {
  it("passes on a new record, a spec change, a deletion begun and a record gone, but not the worker's own status writes", () => {
    const changes = new RecordChanges();
    assert.equal(changes.changed(record(), false), "ns/web");
    assert.equal(changes.changed(record({}, { phase: "Ready" }), false), undefined, "a status write");
    assert.equal(changes.changed(record({ generation: 2 }), false), "ns/web", "a spec change");
    assert.equal(changes.changed(record({ generation: 2, deletionTimestamp: new Date(0) }), false), "ns/web", "deletion begun");
    assert.equal(changes.changed(record({ uid: "r2" }), false), "ns/web", "a new record of the same name");
    assert.equal(changes.size, 1);
    assert.equal(changes.changed(record(), true), "ns/web", "gone");
    assert.equal(changes.changed(record(), true), undefined, "gone twice");
    assert.equal(changes.size, 0);
  });
});
