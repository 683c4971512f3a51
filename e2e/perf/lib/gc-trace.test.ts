import assert from "node:assert/strict";
import { countPauses } from "./gc-trace.js";

describe("countPauses", () => {
  it("reads young and full pauses from Node 20's and Node 24's --trace-gc lines", () => {
    const trace = [
      "[12454:0x2a3be000]      677 ms: Scavenge 42.9 (59.8) -> 33.1 (62.3) MB, pooled: 0 MB, 7.43 / 0.00 ms  (average mu = 0.983, current mu = 0.983) allocation failure; ",
      "[12454:0x2a3be000]     1013 ms: Mark-Compact 50.4 (109.2) -> 44.4 (113.7) MB, pooled: 0 MB, 13.99 / 0.01 ms  (+ 5.4 ms in 87 steps since start of marking)",
      "[1:0x63a0000]       52 ms: Scavenge 3.9 (4.2) -> 3.5 (5.2) MB, 0.61 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure;",
      '{"level":"info","msg":"peer pod mutated"}',
    ].join("\n");
    const pauses = countPauses(trace);
    assert.equal(pauses.scavenges, 2);
    assert.equal(pauses.scavengeMs.toFixed(2), "8.04");
    assert.equal(pauses.markCompacts, 1);
    assert.equal(pauses.markCompactMs, 13.99);
  });
});
