import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../log/logger.js";
import { ProviderError, TAG, type InstanceSpec, type Provider } from "../types.js";
import { createProvider } from "./index.js";

const small = { name: "small", vcpus: 1, memoryMiB: 512, gpus: 0 };

function spec(uid: string): InstanceSpec {
  return { name: `pp-${uid}`, instanceType: small, userData: "", tags: { [TAG.cluster]: "c1", [TAG.podUid]: uid } };
}

describe("sim provider", () => {
  let dir: string;
  const open: Provider[] = [];
  const sim = async (settings: Record<string, unknown>): Promise<Provider> => {
    const provider = await createProvider({ createMs: 0, readyMs: 0, deleteMs: 0, ...settings }, { clusterId: "c1", stateDir: dir, log: silentLogger });
    open.push(provider);
    return provider;
  };

  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "sim-"))));
  afterEach(async () => {
    await Promise.all(open.splice(0).map((p) => p.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it("creates once per name: a second create returns the first instance", async () => {
    const provider = await sim({});
    const [a, b] = await Promise.all([provider.create(spec("u1")), provider.create(spec("u1"))]);
    assert.equal(a.id, b.id);
    assert.equal((await provider.list({ [TAG.podUid]: "u1" })).length, 1);
  });

  it("ends a cancelled call at once, and every waiting call when closed", async () => {
    const provider = await sim({ createMs: 60_000, deleteMs: 60_000 });
    const cancel = new AbortController();
    const creating = provider.create(spec("u1"), { signal: cancel.signal });
    cancel.abort(new Error("stopping"));
    await assert.rejects(creating, /stopping/);
    await assert.rejects(provider.list({}, { signal: cancel.signal }), /stopping/);
    const [vm] = await provider.list({});
    const deleting = provider.delete(vm!.id);
    await provider.close();
    await assert.rejects(deleting, /provider closed/);
  });

  it("hands a pool VM to a pod: pod tags and name in, pool tag out, the data kept, outlasting a restart", async () => {
    const provider = await sim({ claimMs: 0 });
    const pooled = await provider.create({ name: "pool-1", instanceType: small, userData: "", tags: { [TAG.cluster]: "c1", [TAG.pool]: "true" } });
    const claimed = await provider.claim!(pooled.id, { name: "pp-u1", userData: '{"podUID":"u1"}', tags: { [TAG.cluster]: "c1", [TAG.podUid]: "u1" } });
    assert.deepEqual(claimed.tags, { [TAG.cluster]: "c1", [TAG.podUid]: "u1" });
    const again = await sim({});
    assert.equal((await again.create(spec("u1"))).id, pooled.id, "create for the pod finds the claimed VM");
    const inventory = JSON.parse(await readFile(join(dir, "sim-c1.json"), "utf8")) as { instances: { userData?: string }[] };
    assert.equal(inventory.instances[0]!.userData, '{"podUID":"u1"}');
    await assert.rejects(provider.claim!("sim-nope", { name: "x", userData: "", tags: {} }), (e: ProviderError) => e.kind === "notFound");
  });

  it("hands a VM to one pod only: the same pod's repeated claim changes nothing, another pod's is refused", async () => {
    const provider = await sim({ claimMs: 0 });
    const pooled = await provider.create({ name: "pool-1", instanceType: small, userData: "", tags: { [TAG.cluster]: "c1", [TAG.pool]: "true" } });
    const first = { name: "pp-u1", userData: "u1's", tags: { [TAG.cluster]: "c1", [TAG.podUid]: "u1" } };
    await provider.claim!(pooled.id, first);
    assert.equal((await provider.claim!(pooled.id, { ...first, userData: "again" })).name, "pp-u1");
    await assert.rejects(provider.claim!(pooled.id, { name: "pp-u2", userData: "u2's", tags: { [TAG.cluster]: "c1", [TAG.podUid]: "u2" } }), (e: ProviderError) => e.kind === "invalid");
    const inventory = JSON.parse(await readFile(join(dir, "sim-c1.json"), "utf8")) as { instances: { name: string; userData?: string }[] };
    assert.deepEqual(inventory.instances.map((i) => [i.name, i.userData]), [["pp-u1", "u1's"]]);
  });

  it("reports ready only after the ready latency", async () => {
    const provider = await sim({ readyMs: 80 });
    const created = await provider.create(spec("u1"));
    assert.equal(created.ready, false);
    assert.equal(created.state, "pending");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const later = await provider.get(created.id);
    assert.equal(later?.ready, true);
    assert.equal(later?.state, "running");
  });

  it("lists by tags, gets undefined for unknown ids, deletes idempotently", async () => {
    const provider = await sim({});
    const a = await provider.create(spec("u1"));
    await provider.create({ ...spec("u2"), tags: { [TAG.cluster]: "other", [TAG.podUid]: "u2" } });
    assert.deepEqual((await provider.list({ [TAG.cluster]: "c1" })).map((i) => i.id), [a.id]);
    assert.equal(await provider.get("sim-missing"), undefined);
    await provider.delete(a.id);
    await provider.delete(a.id);
    assert.equal(await provider.get(a.id), undefined);
  });

  it("fails with a quota error beyond its capacity", async () => {
    const provider = await sim({ capacity: 1 });
    await provider.create(spec("u1"));
    await assert.rejects(provider.create(spec("u2")), (e: unknown) => e instanceof ProviderError && e.kind === "quota");
  });

  it("throttles calls over its rate limit as retryable", async () => {
    const provider = await sim({ throttle: { ratePerSecond: 0.001, burst: 2 } });
    await provider.list({});
    await provider.list({});
    await assert.rejects(provider.list({}), (e: unknown) => e instanceof ProviderError && e.kind === "retryable" && /throttled/.test(e.message));
  });

  it("in crash mode makes the instance but loses the answer; retries converge on that one instance", async () => {
    const provider = await sim({ crashRate: 0.7, seed: 7 });
    let crashes = 0;
    for (let uid = 0; uid < 20; uid++) {
      for (;;) {
        try {
          await provider.create(spec(`u${uid}`));
          break;
        } catch (error) {
          assert.ok(error instanceof ProviderError && error.kind === "retryable");
          crashes += 1;
        }
      }
    }
    assert.ok(crashes > 5, `expected crashes with crashRate 0.7, saw ${crashes}`);
    const all = await provider.list({ [TAG.cluster]: "c1" });
    assert.equal(all.length, 20);
    assert.equal(new Set(all.map((i) => i.tags[TAG.podUid])).size, 20);
  });

  it("keeps its inventory in a file that a restart reads back", async () => {
    const first = await sim({});
    const made = await first.create(spec("u1"));
    await first.close();
    const second = await sim({});
    assert.equal((await second.get(made.id))?.name, "pp-u1");
    const onDisk = JSON.parse(await readFile(join(dir, "sim-c1.json"), "utf8")) as { instances: { id: string }[] };
    assert.deepEqual(onDisk.instances.map((i) => i.id), [made.id]);
  });

  it("sees an instance removed from the file behind its back", async () => {
    const provider = await sim({});
    const made = await provider.create(spec("u1"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(join(dir, "sim-c1.json"), JSON.stringify({ version: 1, instances: [] }));
    assert.equal(await provider.get(made.id), undefined);
  });

  it("reports unhealthy while the unhealthy file exists", async () => {
    const file = join(dir, "down");
    const provider = await sim({ unhealthyFile: file });
    assert.deepEqual(await provider.health(), { healthy: true });
    await writeFile(file, "zone outage\n");
    assert.deepEqual(await provider.health(), { healthy: false, message: "zone outage" });
  });

  it("with unhealthyFailsCalls fails every call as retryable during the outage, losing nothing", async () => {
    const file = join(dir, "down");
    const provider = await sim({ unhealthyFile: file, unhealthyFailsCalls: true });
    const made = await provider.create(spec("u1"));
    await writeFile(file, "region outage\n");
    for (const call of [() => provider.list({}), () => provider.get(made.id), () => provider.delete(made.id), () => provider.create(spec("u2"))]) {
      await assert.rejects(call(), (error: unknown) => error instanceof ProviderError && error.kind === "retryable" && /service unavailable \(region outage\)/.test(error.message));
    }
    await rm(file);
    assert.deepEqual((await provider.list({})).map((i) => i.id), [made.id]);
  });

  it("rejects invalid settings with the path of each error", async () => {
    await assert.rejects(sim({ errorRate: 2 }), /provider\.sim\.errorRate/);
    await assert.rejects(sim({ createMs: { median: 10, p99: 5 } }), /p99 must be at least the median/);
  });
});
