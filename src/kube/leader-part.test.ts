import assert from "node:assert/strict";
import type { KubeConfig } from "@kubernetes/client-node";
import type { ServeConfig } from "../config/serve.js";
import { silentLogger } from "../log/logger.js";
import type { RunningPart } from "../parts.js";
import type { LeaderElection, LeaderElectionOptions } from "./leader.js";
import { runWhileLeading } from "./leader-part.js";

/** An election this test drives: it says when this replica leads, and counts resignations. */
function fakeElection(): { elect: (kc: KubeConfig, options: LeaderElectionOptions) => LeaderElection; options: () => LeaderElectionOptions; resigned: () => number } {
  let options: LeaderElectionOptions | undefined;
  let resigned = 0;
  const elect = (_kc: KubeConfig, given: LeaderElectionOptions): LeaderElection => {
    options = given;
    return {
      identity: "me",
      isLeader: () => false,
      resign: async () => {
        resigned++;
        await given.onStoppedLeading();
      },
      stop: async () => {
        await given.onStoppedLeading();
      },
    };
  };
  return { elect, options: () => options!, resigned: () => resigned };
}

describe("runWhileLeading", () => {
  const checks = new Map<string, () => boolean>();
  const context = {
    config: { leaderElect: true, leaderElectionNamespace: "peerpods" } as ServeConfig,
    kube: () => ({}) as KubeConfig,
    addReadyCheck: (name: string, check: () => boolean) => void checks.set(name, check),
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it("gives the Lease back and is not ready when the part fails to start, and ready again once a start works", async () => {
    const election = fakeElection();
    let fail = true;
    const started: string[] = [];
    await runWhileLeading(context, "peerpods-worker", silentLogger, async () => {
      if (fail) throw new Error("no provider");
      started.push("ok");
      return { stop: async () => undefined };
    }, election.elect);
    assert.equal(checks.get("peerpods-worker")!(), true, "ready before any attempt");
    await election.options().onStartedLeading();
    await settle();
    assert.equal(election.resigned(), 1);
    assert.equal(checks.get("peerpods-worker")!(), false);
    fail = false;
    await election.options().onStartedLeading();
    await settle();
    assert.deepEqual(started, ["ok"]);
    assert.equal(checks.get("peerpods-worker")!(), true);
    assert.equal(election.resigned(), 1);
  });

  it("stops the part at once when the Lease is lost, and with the grace period at shutdown", async () => {
    const election = fakeElection();
    const graces: number[] = [];
    const part: RunningPart = { stop: async (graceMs) => void graces.push(graceMs) };
    const running = await runWhileLeading(context, "peerpods-worker", silentLogger, async () => part, election.elect);
    await election.options().onStartedLeading();
    await election.options().onStoppedLeading();
    await election.options().onStartedLeading();
    await running.stop(30_000);
    assert.deepEqual(graces, [0, 30_000]);
  });
});
