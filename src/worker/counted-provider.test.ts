import assert from "node:assert/strict";
import { providerErrors } from "../metrics/worker.js";
import { ProviderError, type Provider } from "../providers/types.js";
import { errorsCounted } from "./counted-provider.js";

async function count(kind: string): Promise<number> {
  return (await providerErrors.get()).values.find((v) => v.labels.provider === "flaky" && v.labels.kind === kind)?.value ?? 0;
}

describe("errorsCounted", () => {
  it("counts every failed call by kind, listings included, and passes results and errors through", async () => {
    const provider = {
      name: "flaky",
      list: async () => Promise.reject(new ProviderError("retryable", "service unavailable")),
      get: async () => Promise.reject(new Error("socket hang up")),
      delete: async () => undefined,
      health: async () => ({ healthy: false, message: "down" }),
    } as unknown as Provider;
    const counted = errorsCounted(provider);
    const before = { retryable: await count("retryable"), unknown: await count("unknown") };
    await assert.rejects(counted.list({}), /service unavailable/);
    await assert.rejects(counted.list({}), /service unavailable/);
    await assert.rejects(counted.get("i-1"), /socket hang up/);
    await counted.delete("i-1");
    assert.deepEqual(await counted.health(), { healthy: false, message: "down" });
    assert.equal((await count("retryable")) - before.retryable, 2);
    assert.equal((await count("unknown")) - before.unknown, 1);
    assert.equal(counted.claim, undefined, "no claim where the provider has none");
  });
});
