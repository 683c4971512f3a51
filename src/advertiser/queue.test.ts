import assert from "node:assert/strict";
import { silentLogger } from "../log/logger.js";
import { KeyedQueue } from "./queue.js";

describe("KeyedQueue", () => {
  it("runs a key once however often it was added while waiting", async () => {
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const queue = new KeyedQueue(async (key) => {
      runs.push(key);
      if (key === "first") await gate;
    }, silentLogger);
    queue.add("first");
    queue.add("a");
    queue.add("b");
    queue.add("a");
    release();
    await queue.idle();
    assert.deepEqual(runs, ["first", "a", "b"]);
  });

  it("retries a failing key with growing delays until it succeeds", async () => {
    const times: number[] = [];
    const queue = new KeyedQueue(
      async () => {
        times.push(Date.now());
        if (times.length < 3) throw new Error("conflict");
      },
      silentLogger,
      20,
    );
    queue.add("n");
    while (times.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
    await queue.idle();
    assert.equal(times.length, 3);
    assert.ok(times[2]! - times[1]! >= 35, `second retry waited ${times[2]! - times[1]!} ms, expected about 40`);
    await queue.stop();
  });

  it("drops queued work and pending retries on stop", async () => {
    let runs = 0;
    const queue = new KeyedQueue(async () => {
      runs += 1;
      throw new Error("always");
    }, silentLogger, 10);
    queue.add("n");
    await queue.idle();
    await queue.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    queue.add("n");
    assert.equal(runs, 1);
  });
});
