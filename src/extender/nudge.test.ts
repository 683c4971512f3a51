import assert from "node:assert/strict";
import { silentLogger } from "../log/logger.js";
import { ReleaseNudge } from "./nudge.js";

const settle = (ms = 20): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("ReleaseNudge", () => {
  let touched: string[];
  let nudge: ReleaseNudge;
  beforeEach(() => {
    touched = [];
    nudge = new ReleaseNudge(async (node) => void touched.push(node), silentLogger, 50);
  });
  afterEach(() => nudge.stop());

  it("writes nothing for releases while no pod was turned away", async () => {
    nudge.released("n1");
    await settle();
    assert.deepEqual(touched, []);
  });

  it("touches the node of the first release after a turn-away, once", async () => {
    nudge.turnedAway();
    nudge.released("n1");
    nudge.released("n2");
    await settle();
    assert.deepEqual(touched, ["n1"]);
    nudge.released("n3");
    await settle();
    assert.deepEqual(touched, ["n1"], "no new turn-away, no new write");
  });

  it("spaces writes by the minimum interval", async () => {
    nudge.turnedAway();
    nudge.released("n1");
    await settle(5);
    nudge.turnedAway();
    nudge.released("n2");
    await settle(10);
    assert.deepEqual(touched, ["n1"]);
    await settle(60);
    assert.deepEqual(touched, ["n1", "n2"]);
  });

  it("survives a failing write and tries again after the next turn-away", async () => {
    let attempts = 0;
    nudge = new ReleaseNudge(async () => {
      attempts += 1;
      throw new Error("forbidden");
    }, silentLogger, 0);
    nudge.turnedAway();
    nudge.released("n1");
    await settle();
    nudge.turnedAway();
    nudge.released("n1");
    await settle();
    assert.equal(attempts, 2);
  });
});
