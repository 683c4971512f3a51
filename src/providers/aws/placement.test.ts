import assert from "node:assert/strict";
import { clientToken, subnetCandidates } from "./placement.js";

const subnets = [
  { id: "subnet-a", zone: "z-a" },
  { id: "subnet-b", zone: "z-b" },
  { id: "subnet-c", zone: "z-c" },
  { id: "subnet-c2", zone: "z-c" },
];

describe("aws placement", () => {
  it("keeps only subnets in the allowed zones, all of them when unrestricted", () => {
    assert.deepEqual(subnetCandidates(subnets, ["z-c"], "vm").map((subnet) => subnet.id).sort(), ["subnet-c", "subnet-c2"]);
    assert.equal(subnetCandidates(subnets, undefined, "vm").length, 4);
    assert.equal(subnetCandidates(subnets, [], "vm").length, 4);
    assert.deepEqual(subnetCandidates(subnets, ["z-x"], "vm"), []);
  });

  it("orders the same way for the same VM and spreads different VMs over the subnets", () => {
    assert.deepEqual(subnetCandidates(subnets, undefined, "vm-1"), subnetCandidates(subnets, undefined, "vm-1"));
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => subnetCandidates(subnets, undefined, `vm-${i}`)[0]?.id));
    assert.equal(firsts.size, 4);
    const order = subnetCandidates(subnets, undefined, "vm-7").map((subnet) => subnet.id);
    const start = subnets.findIndex((subnet) => subnet.id === order[0]);
    assert.deepEqual(order, [...subnets.slice(start), ...subnets.slice(0, start)].map((subnet) => subnet.id), "a rotation of the configured order");
  });

  it("makes a stable 64-character token per cluster, VM, subnet and generation", () => {
    const token = clientToken("c", "vm", "subnet-a", 0);
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal(clientToken("c", "vm", "subnet-a", 0), token);
    const others = [clientToken("d", "vm", "subnet-a", 0), clientToken("c", "vm2", "subnet-a", 0), clientToken("c", "vm", "subnet-b", 0), clientToken("c", "vm", "subnet-a", 1), clientToken("c", "vm", undefined, 0)];
    assert.equal(new Set([token, ...others]).size, 6);
  });
});
