import assert from "node:assert/strict";
import { sampleLatency, seededRandom } from "./random.js";

describe("sim latency", () => {
  it("returns a fixed latency as is", () => {
    assert.equal(sampleLatency(250, seededRandom(1)), 250);
  });

  it("draws a log-normal whose median and p99 match the settings", () => {
    const random = seededRandom(42);
    const draws = Array.from({ length: 20_000 }, () => sampleLatency({ median: 100, p99: 1000 }, random)).sort((a, b) => a - b);
    const median = draws[10_000]!;
    const p99 = draws[19_800]!;
    assert.ok(median > 95 && median < 105, `median ${median}`);
    assert.ok(p99 > 850 && p99 < 1150, `p99 ${p99}`);
  });

  it("repeats the same draws for the same seed", () => {
    const a = seededRandom(9);
    const b = seededRandom(9);
    assert.deepEqual([a(), a(), a()], [b(), b(), b()]);
  });
});
