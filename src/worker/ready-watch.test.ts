import assert from "node:assert/strict";
import { silentLogger } from "../log/logger.js";
import type { Instance, Provider } from "../providers/types.js";
import { rateLimited, TokenBucket } from "../providers/ratelimit.js";
import { ReadyWatcher } from "./ready-watch.js";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A cloud with one VM that becomes ready after `readyAfter` listings; counts the listings. */
function cloud(readyAfter: number, readyPollMs?: number): Provider & { listings: number } {
  const provider = {
    name: "fake",
    listings: 0,
    ...(readyPollMs !== undefined ? { readyPollMs } : {}),
    list: async (): Promise<Instance[]> => {
      provider.listings += 1;
      const ready = provider.listings >= readyAfter;
      return [{ id: "vm-1", name: "pp-1", state: ready ? "running" : "pending", ready, instanceType: "small", tags: {}, createdAt: new Date() }];
    },
  };
  return provider as unknown as Provider & { listings: number };
}

describe("ReadyWatcher", () => {
  let watcher: ReadyWatcher | undefined;
  afterEach(() => watcher?.stop());

  it("lists once per interval for every waiting VM and hands each key back when its VM is ready", async () => {
    const provider = cloud(3);
    const woken: string[] = [];
    watcher = new ReadyWatcher(provider, "c1", 10, (key) => woken.push(`${key}:${watcher!.take(key)?.ready}`), silentLogger);
    watcher.wait("ns/a", "vm-1");
    watcher.wait("ns/b", "vm-1");
    await sleep(100);
    assert.deepEqual(woken.sort(), ["ns/a:true", "ns/b:true"]);
    assert.equal(provider.listings, 3, "one listing per interval for both, none once nothing waits");
    assert.equal(watcher.take("ns/a"), undefined, "what the listing showed is taken once");
  });

  it("polls at the provider's own readyPollMs, also through the worker's wrappers", async () => {
    const slow = cloud(1000, 80);
    watcher = new ReadyWatcher(rateLimited(slow, new TokenBucket(1000, 1000)), "c1", 5, () => undefined, silentLogger);
    watcher.wait("ns/a", "vm-1");
    await sleep(200);
    assert.ok(slow.listings >= 1 && slow.listings <= 3, `listed ${slow.listings} times in 200 ms at an 80 ms interval (5 ms would give dozens)`);
  });
});
