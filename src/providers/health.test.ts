import assert from "node:assert/strict";
import { silentLogger } from "../log/logger.js";
import { ProviderHealthMonitor } from "./health.js";
import type { Provider, ProviderHealth } from "./types.js";

/** A provider whose health answers come from a script, one per check. */
function scripted(answers: (ProviderHealth | Error)[]): () => Promise<Provider> {
  const provider = {
    health: async () => {
      const answer = answers.shift();
      if (answer === undefined) throw new Error("script ran out");
      if (answer instanceof Error) throw answer;
      return answer;
    },
  } as unknown as Provider;
  return async () => provider;
}

const UP: ProviderHealth = { healthy: true };
const DOWN: ProviderHealth = { healthy: false, message: "zone outage" };

describe("ProviderHealthMonitor", () => {
  it("takes the first reading at once, so a replica started during an outage never reports healthy", async () => {
    const monitor = new ProviderHealthMonitor(scripted([DOWN]), silentLogger);
    const flips: boolean[] = [];
    monitor.on("change", (healthy) => flips.push(healthy));
    let settled = false;
    void monitor.firstReading.then(() => (settled = true));
    await monitor.check();
    await Promise.resolve();
    assert.equal(settled, true);
    assert.equal(monitor.healthy, false);
    assert.equal(monitor.message, "zone outage");
    assert.deepEqual(flips, [false]);
  });

  it("after the first reading flips only when `threshold` checks in a row agree", async () => {
    const monitor = new ProviderHealthMonitor(scripted([UP, DOWN, UP, DOWN, DOWN, UP, UP]), silentLogger, 5000, 2);
    const seen: boolean[] = [];
    for (let i = 0; i < 7; i += 1) {
      await monitor.check();
      seen.push(monitor.healthy);
    }
    assert.deepEqual(seen, [true, true, true, true, false, false, true]);
  });

  it("counts a failing or hanging health call as unhealthy, with the error as the reason", async () => {
    const failing = new ProviderHealthMonitor(scripted([new Error("connection refused")]), silentLogger);
    await failing.check();
    assert.equal(failing.healthy, false);
    assert.equal(failing.message, "connection refused");

    const hanging = { health: () => new Promise<ProviderHealth>(() => undefined) } as unknown as Provider;
    const slow = new ProviderHealthMonitor(async () => hanging, silentLogger, 5000, 2, 20);
    await slow.check();
    assert.equal(slow.healthy, false);
    assert.match(slow.message ?? "", /timed out after 20 ms/);
  });
});
