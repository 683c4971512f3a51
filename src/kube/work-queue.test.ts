import assert from "node:assert/strict";
import { WorkQueue, type HandlerResult } from "./work-queue.js";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const options = { concurrency: 2, baseBackoffMs: 10, maxBackoffMs: 1000, jitter: 0 };

describe("WorkQueue", () => {
  let queue: WorkQueue | undefined;
  afterEach(async () => queue?.stop(0));

  it("retries every backing-off key at once on retryDelayedNow, and only those", async () => {
    const calls = new Map<string, number>();
    let cloudUp = false;
    queue = new WorkQueue(async (key) => {
      calls.set(key, (calls.get(key) ?? 0) + 1);
      if (key !== "fine" && !cloudUp) throw new Error("cloud down");
    }, { ...options, baseBackoffMs: 60_000 });
    queue.start();
    for (const key of ["a", "b", "fine"]) queue.add(key);
    await sleep(10);
    assert.equal(queue.delayed, 2);
    cloudUp = true;
    queue.retryDelayedNow();
    await sleep(10);
    assert.deepEqual(Object.fromEntries(calls), { a: 2, b: 2, fine: 1 });
    assert.equal(queue.delayed, 0);
  });

  it("holds keys until started", async () => {
    const seen: string[] = [];
    queue = new WorkQueue(async (key) => void seen.push(key), options);
    queue.add("a");
    await sleep(10);
    assert.deepEqual(seen, []);
    queue.start();
    await sleep(10);
    assert.deepEqual(seen, ["a"]);
  });

  it("handles a key added many times while queued once", async () => {
    const seen: string[] = [];
    queue = new WorkQueue(async (key) => void seen.push(key), { ...options, concurrency: 1 });
    queue.start();
    queue.add("busy");
    queue.add("a");
    queue.add("b");
    queue.add("b");
    queue.add("a");
    assert.equal(queue.depth, 2);
    await sleep(20);
    assert.deepEqual(seen, ["busy", "a", "b"]);
  });

  it("puts a key added `first` ahead of the waiting ones, also when it was already waiting", async () => {
    const seen: string[] = [];
    queue = new WorkQueue(async (key) => void seen.push(key), { ...options, concurrency: 1 });
    for (const key of ["a", "b", "c", "d"]) queue.add(key);
    queue.add("x", true);
    queue.add("c", true);
    assert.equal(queue.depth, 5);
    queue.start();
    await sleep(20);
    assert.deepEqual(seen, ["c", "x", "a", "b", "d"]);
  });

  it("never handles one key twice at the same time, and handles it again if it changed meanwhile", async () => {
    let running = 0;
    let most = 0;
    let calls = 0;
    queue = new WorkQueue(async () => {
      calls += 1;
      running += 1;
      most = Math.max(most, running);
      await sleep(20);
      running -= 1;
    }, options);
    queue.start();
    queue.add("a");
    await sleep(5);
    queue.add("a");
    queue.add("a");
    await sleep(80);
    assert.equal(most, 1);
    assert.equal(calls, 2);
  });

  it("keeps at most `concurrency` keys in hand", async () => {
    let running = 0;
    let most = 0;
    queue = new WorkQueue(async () => {
      running += 1;
      most = Math.max(most, running);
      await sleep(10);
      running -= 1;
    }, { ...options, concurrency: 3 });
    queue.start();
    for (let i = 0; i < 20; i++) queue.add(`k${i}`);
    assert.equal(queue.depth, 17);
    await sleep(150);
    assert.equal(most, 3);
    assert.equal(queue.depth, 0);
  });

  it("retries a failing key with exponential backoff, then forgets the failures", async () => {
    const times: number[] = [];
    let failuresSeen: number[] = [];
    queue = new WorkQueue(
      async () => {
        times.push(Date.now());
        if (times.length <= 3) throw new Error("boom");
      },
      { ...options, onError: (_key, _error, failures) => failuresSeen.push(failures) },
    );
    queue.start();
    queue.add("a");
    await sleep(150);
    assert.equal(times.length, 4);
    assert.deepEqual(failuresSeen, [1, 2, 3]);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    assert.ok(gaps[0]! >= 9 && gaps[1]! >= 19 && gaps[2]! >= 39, `gaps ${gaps.join(",")}`);
    failuresSeen = [];
  });

  it("draws backoff within the jitter band and caps it", () => {
    const values = [0, 0.5, 0.999];
    let i = 0;
    const q = new WorkQueue(async () => undefined, { ...options, jitter: 0.2, random: () => values[i++ % 3]! });
    assert.deepEqual([q.backoffMs(1), q.backoffMs(1), q.backoffMs(1)], [8, 10, 12]);
    assert.equal(q.backoffMs(40), 800);
  });

  it("looks again after the delay a handler asks for", async () => {
    let calls = 0;
    queue = new WorkQueue(async (): Promise<HandlerResult> => (++calls < 3 ? { requeueAfterMs: 15 } : undefined), options);
    queue.start();
    queue.add("a");
    await sleep(8);
    assert.equal(calls, 1);
    await sleep(60);
    assert.equal(calls, 3);
  });

  it("on stop waits for keys in hand, up to the grace period, and takes no more", async () => {
    let finished = 0;
    queue = new WorkQueue(async () => {
      await sleep(30);
      finished += 1;
    }, options);
    queue.start();
    queue.add("a");
    queue.add("b");
    queue.add("c");
    await queue.stop(1000);
    assert.equal(finished, 2);
    queue.add("d");
    await sleep(40);
    assert.equal(finished, 2);
  });
});
