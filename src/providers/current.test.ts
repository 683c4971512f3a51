import assert from "node:assert/strict";
import { silentLogger } from "../log/logger.js";
import { CurrentProvider } from "./current.js";
import type { ProviderConfig } from "./factory.js";
import { ProviderError, type Instance, type Provider } from "./types.js";
import { aroundCalls } from "./wrap.js";

/** A provider that records its calls; `hold` keeps the next list call running until released. */
class FakeProvider implements Provider {
  readonly calls: string[] = [];
  closed = false;
  #held: (() => void) | undefined;
  constructor(
    readonly name: string,
    readonly settings: unknown,
    readonly readyPollMs?: number,
  ) {}
  hold(): void {
    this.#held = () => undefined;
  }
  async create(): Promise<Instance> {
    throw new Error("not used");
  }
  async get(): Promise<undefined> {
    return undefined;
  }
  async list(): Promise<Instance[]> {
    this.calls.push("list");
    if (this.#held) await new Promise<void>((resolve) => (this.#held = resolve));
    return [];
  }
  release(): void {
    this.#held?.();
  }
  async delete(): Promise<void> {}
  async health() {
    return { healthy: true };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

describe("CurrentProvider", () => {
  let block: ProviderConfig;
  let made: FakeProvider[];
  let failNext: Error[];
  let now: number;
  const current = (): CurrentProvider =>
    new CurrentProvider({
      config: () => block,
      create: async (config) => {
        const failure = failNext.shift();
        if (failure) throw failure;
        const provider = new FakeProvider(config.name, config[config.name], config.name === "aws" ? 2000 : undefined);
        made.push(provider);
        return provider;
      },
      log: silentLogger,
      firstRetryMs: 1000,
      maxRetryMs: 3000,
      now: () => now,
    });

  beforeEach(() => {
    block = { name: "qemu", qemu: { maxVMs: 4 } };
    made = [];
    failNext = [];
    now = 0;
  });

  it("makes the provider once and keeps it while its settings stay the same", async () => {
    const provider = current();
    await provider.list({});
    block = { ...block, aws: { region: "eu-west-1" } }; // another provider's block: not ours
    await provider.list({});
    assert.equal(made.length, 1);
    assert.deepEqual(made[0]!.calls, ["list", "list"]);
  });

  it("replaces the provider when its settings change, and closes the old one once its calls are done", async () => {
    const provider = current();
    await provider.ready();
    const old = made[0]!;
    old.hold();
    const running = provider.list({});
    await new Promise((resolve) => setImmediate(resolve));
    block = { name: "qemu", qemu: { maxVMs: 8 } };
    await provider.list({});
    assert.equal(made.length, 2);
    assert.deepEqual(made[1]!.settings, { maxVMs: 8 }, "the new provider has the new settings");
    assert.equal(old.closed, false, "not closed under a running call");
    old.release();
    await running;
    assert.equal(old.closed, true, "closed once its last call is done");
    assert.equal(made[1]!.closed, false);
  });

  it("keeps the cloud it started with when the policy names another, and still follows that cloud's settings", async () => {
    const provider = current();
    const wrapped = aroundCalls(await provider.ready(), (_name, call, options) => call(options));
    block = { name: "aws", aws: { region: "eu-west-1" } };
    await wrapped.list({});
    assert.deepEqual([wrapped.name, wrapped.readyPollMs], ["qemu", undefined]);
    assert.deepEqual(made.map((p) => [p.name, p.closed]), [["qemu", false]], "the qemu VMs are not stranded");
    block = { name: "qemu", qemu: { maxVMs: 8 } };
    await wrapped.list({});
    assert.deepEqual(made.map((p) => [p.name, p.closed, p.settings]), [["qemu", true, { maxVMs: 4 }], ["qemu", false, { maxVMs: 8 }]]);
  });

  it("tries a failed creation again after a backoff that doubles up to its cap, failing calls until then", async () => {
    const provider = current();
    failNext = [new Error("no image"), new Error("still no image"), new Error("again"), new Error("and again")];
    await assert.rejects(provider.list({}), /no image/);
    now = 999;
    await assert.rejects(provider.list({}), /^Error: no image$/, "within the backoff: the same error, no new attempt");
    assert.equal(failNext.length, 3);
    now = 1000;
    await assert.rejects(provider.list({}), /still no image/);
    now = 2999;
    await assert.rejects(provider.list({}), /still no image/, "the second wait is twice the first");
    now = 3000;
    await assert.rejects(provider.list({}), /^Error: again$/);
    now = 6000;
    await assert.rejects(provider.list({}), /and again/, "the wait stops growing at its cap");
    now = 9000;
    await provider.list({});
    assert.equal(made.length, 1);
  });

  it("makes a provider for new settings at once, even while the old ones are waiting out a failure", async () => {
    const provider = current();
    failNext = [new Error("bad settings")];
    await assert.rejects(provider.ready(), /bad settings/);
    block = { name: "qemu", qemu: { maxVMs: 2 } };
    await provider.ready();
    assert.equal(made.length, 1);
  });

  it("closes the provider in force, after which calls fail instead of making another", async () => {
    const provider = current();
    await provider.close();
    assert.equal(made.length, 0, "nothing made, nothing to close");
    const again = current();
    await again.list({});
    await again.close();
    assert.equal(made[0]!.closed, true);
    await assert.rejects(again.list({}), (error) => error instanceof ProviderError && /closed/.test(error.message));
    assert.equal(made.length, 1);
  });
});
