import assert from "node:assert/strict";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema } from "../policy/schema.js";
import { desiredSlots, statusPatch, type NodeStatusObject } from "./desired.js";

const policy = compilePolicy(policySpecSchema.parse({ nodes: { selector: { matchLabels: { peer: "yes" } }, vmsPerNode: 4 } }), 1);
const RES = "kata.peerpods.io/vm";
const PATH = "kata.peerpods.io~1vm";

function node(labels: Record<string, string>, ready: boolean | undefined, annotations?: Record<string, string>, status: Partial<NonNullable<NodeStatusObject["status"]>> = {}): NodeStatusObject {
  return {
    metadata: { name: "n", labels, annotations },
    status: { ...(ready === undefined ? {} : { conditions: [{ type: "Ready", status: ready ? "True" : "False" }] }), ...status },
  };
}

describe("desiredSlots", () => {
  const cases: [string, NodeStatusObject, boolean, ReturnType<typeof desiredSlots>][] = [
    ["matching, Ready, provider healthy", node({ peer: "yes" }, true), true, { capacity: 4, allocatable: 4 }],
    ["matching, not Ready", node({ peer: "yes" }, false), true, { capacity: 4, allocatable: 0 }],
    ["matching, no conditions yet", node({ peer: "yes" }, undefined), true, { capacity: 4, allocatable: 0 }],
    ["matching, provider unhealthy", node({ peer: "yes" }, true), false, { capacity: 4, allocatable: 0 }],
    ["annotation overrides slots", node({ peer: "yes" }, true, { "peerpods.io/vms-per-node": "7" }), true, { capacity: 7, allocatable: 7 }],
    ["annotation zero", node({ peer: "yes" }, true, { "peerpods.io/vms-per-node": "0" }), true, { capacity: 0, allocatable: 0 }],
    ["invalid annotation falls back", node({ peer: "yes" }, true, { "peerpods.io/vms-per-node": "-3" }), true, { capacity: 4, allocatable: 4 }],
    ["not matching", node({ peer: "no" }, true), true, undefined],
  ];
  for (const [name, n, healthy, expected] of cases) {
    it(name, () => assert.deepEqual(desiredSlots(n, policy, healthy), expected));
  }
});

describe("statusPatch", () => {
  it("adds the resource to existing capacity and allocatable, escaping the slash", () => {
    const n = node({}, true, undefined, { capacity: { cpu: "4" }, allocatable: { cpu: "4" } });
    assert.deepEqual(statusPatch(n, RES, [], { capacity: 4, allocatable: 0 }), [
      { op: "add", path: `/status/capacity/${PATH}`, value: "4" },
      { op: "add", path: `/status/allocatable/${PATH}`, value: "0" },
    ]);
  });

  it("creates capacity and allocatable when the node has none", () => {
    assert.deepEqual(statusPatch(node({}, true), RES, [], { capacity: 2, allocatable: 2 }), [
      { op: "add", path: "/status/capacity", value: { [RES]: "2" } },
      { op: "add", path: "/status/allocatable", value: { [RES]: "2" } },
    ]);
  });

  it("is empty when the status already says it", () => {
    const n = node({}, true, undefined, { capacity: { [RES]: "4" }, allocatable: { [RES]: "0" } });
    assert.deepEqual(statusPatch(n, RES, [RES], { capacity: 4, allocatable: 0 }), []);
  });

  it("changes only what differs", () => {
    const n = node({}, true, undefined, { capacity: { [RES]: "4" }, allocatable: { [RES]: "0" } });
    assert.deepEqual(statusPatch(n, RES, [], { capacity: 4, allocatable: 4 }), [{ op: "add", path: `/status/allocatable/${PATH}`, value: "4" }]);
  });

  it("removes the resource from a node that stopped matching, and nothing from one that never had it", () => {
    const n = node({}, true, undefined, { capacity: { [RES]: "4", cpu: "1" }, allocatable: { [RES]: "4" } });
    assert.deepEqual(statusPatch(n, RES, [], undefined), [
      { op: "remove", path: `/status/capacity/${PATH}` },
      { op: "remove", path: `/status/allocatable/${PATH}` },
    ]);
    assert.deepEqual(statusPatch(node({}, true, undefined, { capacity: { cpu: "1" } }), RES, [], undefined), []);
  });

  it("removes a former resource name after the policy renamed it", () => {
    const n = node({}, true, undefined, { capacity: { [RES]: "4" }, allocatable: { [RES]: "4" } });
    assert.deepEqual(statusPatch(n, "example.com/vm", [RES, "example.com/vm"], { capacity: 4, allocatable: 4 }), [
      { op: "add", path: "/status/capacity/example.com~1vm", value: "4" },
      { op: "remove", path: `/status/capacity/${PATH}` },
      { op: "add", path: "/status/allocatable/example.com~1vm", value: "4" },
      { op: "remove", path: `/status/allocatable/${PATH}` },
    ]);
  });
});
