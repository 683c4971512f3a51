import assert from "node:assert/strict";
import { rateLimited, TokenBucket } from "./ratelimit.js";
import type { Provider } from "./types.js";

describe("TokenBucket", () => {
  it("gives out its burst, then one token per 1/rate seconds", () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    assert.deepEqual([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()], [true, true, true, false]);
    assert.equal(bucket.waitMs(), 100);
    now = 50;
    assert.equal(bucket.tryTake(), false);
    now = 100;
    assert.equal(bucket.tryTake(), true);
    now = 10_000;
    assert.deepEqual([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()], [true, true, true, false], "never more than the burst saved up");
  });

  it("holds calls of a rate-limited provider until a token is there", async () => {
    let calls = 0;
    const provider = {
      name: "fake",
      list: async () => {
        calls += 1;
        return [];
      },
      health: async () => ({ healthy: true }),
    } as unknown as Provider;
    const limited = rateLimited(provider, new TokenBucket(5, 1));
    await limited.list({});
    const second = limited.list({});
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(calls, 1, "the second call waits (its token is 200 ms away)");
    assert.deepEqual(await limited.health(), { healthy: true }, "health checks are not rate-limited");
    await second;
    assert.equal(calls, 2, "the second call goes once its token is there");
  });
});
