import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { InstanceType } from "../src/policy/schema.js";
import { createProvider } from "../src/providers/factory.js";
import { TAG, type Instance, type InstanceSpec, type Provider, type ProviderError } from "../src/providers/types.js";
import { waitFor } from "./support/wait.js";

const CLUSTER = "qemu-suite";
const SMALL: InstanceType = { name: "small", vcpus: 1, memoryMiB: 256, gpus: 0 };
const BOOT_TIMEOUT_MS = 120_000;

function spec(uid: string, userData: object = {}): InstanceSpec {
  return {
    name: `pp-${uid}`,
    instanceType: SMALL,
    userData: JSON.stringify({ cluster: CLUSTER, namespace: "default", pod: `pod-${uid}`, podUID: uid, ...userData }),
    tags: { [TAG.cluster]: CLUSTER, [TAG.podUid]: uid, [TAG.namespace]: "default", [TAG.podName]: `pod-${uid}`, [TAG.instanceType]: SMALL.name },
  };
}

/** Sends `lines` to the agent endpoint (`tcp:host:port`) and returns everything it answers until it closes. */
function talkToAgent(endpoint: string, lines: string[]): Promise<string> {
  const [, host, port] = /^tcp:(.+):(\d+)$/.exec(endpoint) ?? [];
  return new Promise((resolve, reject) => {
    const socket = connect({ host: host!, port: Number(port) });
    let answer = "";
    socket.setEncoding("utf8");
    socket.setTimeout(10_000, () => socket.destroy(new Error(`agent at ${endpoint} did not answer: ${JSON.stringify(answer)}`)));
    socket.on("data", (chunk: string) => (answer += chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    socket.write(lines.map((line) => `${line}\n`).join(""));
  });
}

/** Pids of processes whose command line mentions `text`. */
async function processesMentioning(text: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((entry) => /^\d+$/.test(entry));
  const matches = await Promise.all(pids.map(async (pid) => ((await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).includes(text) ? Number(pid) : undefined)));
  return matches.filter((pid): pid is number => pid !== undefined && pid !== process.pid);
}

describe("qemu provider: real pod VMs", function () {
  this.timeout(BOOT_TIMEOUT_MS * 2);
  let stateDir: string;
  const log = pino({ level: process.env.E2E_LOG_LEVEL ?? "silent" });
  const newProvider = (settings: Record<string, unknown> = {}): Promise<Provider> => createProvider({ name: "qemu", qemu: settings }, { clusterId: CLUSTER, stateDir, log });
  let provider: Provider;
  let booted: Instance[] = [];

  before(async () => {
    // Short: unix socket paths in the VM folders must stay under 108 bytes.
    stateDir = await mkdtemp(join(tmpdir(), "pp-qemu-"));
    provider = await newProvider();
  });

  after(async () => {
    // Whatever happened above, leave no VM behind.
    for (const pid of await processesMentioning(`${stateDir}/`)) process.kill(pid, "SIGKILL");
    await rm(stateDir, { recursive: true, force: true });
  });

  it("is healthy: binary, image and a probe boot", async () => {
    const health = await provider.health();
    assert.equal(health.healthy, true, health.message);
    assert.match(health.message ?? "", /^(kvm|tcg)\/(microvm|q35): probe VM ready/);
  });

  it("boots three VMs at once and each reports ready and answers on its agent port", async () => {
    const specs = [spec("u1", { command: ["sh", "-c", "echo hello from $(uname -r)"] }), spec("u2"), spec("u3", { command: ["sleep", "3600"] })];
    const created = await Promise.all(specs.map((s) => provider.create(s)));
    assert.equal(new Set(created.map((i) => i.id)).size, 3);
    booted = await Promise.all(
      created.map((instance) =>
        waitFor(async () => {
          const current = await provider.get(instance.id);
          if (current?.state === "terminated") throw new Error(`VM ${instance.id} terminated: ${current.message}`);
          return current?.ready && current;
        }, { timeoutMs: BOOT_TIMEOUT_MS, message: `VM ${instance.id} ready`, intervalMs: 100 }),
      ),
    );
    for (const instance of booted) {
      assert.equal(instance.state, "running");
      assert.match(instance.agentEndpoint ?? "", /^tcp:127\.0\.0\.1:\d+$/);
      const answer = await talkToAgent(instance.agentEndpoint!, ["ping", `echo ${instance.name}`, "health", "quit"]);
      const [pong, echo, health] = answer.trim().split("\n");
      assert.equal(pong, "pong");
      assert.equal(echo, instance.name);
      assert.equal(JSON.parse(health!).ready, true);
    }
  });

  it("runs the first container's command and streams its output to the host", async () => {
    const u1 = booted.find((i) => i.tags[TAG.podUid] === "u1")!;
    const output = await waitFor(async () => {
      const text = await readFile(join(stateDir, "qemu", u1.id, "workload.log"), "utf8");
      return /hello from \S+-cloud-amd64/.test(text) && text;
    }, { timeoutMs: 30_000, message: "workload output" });
    assert.match(output, /hello from/);
    await waitFor(async () => (await provider.get(u1.id))?.message?.includes("workload exited with code 0"), { timeoutMs: 30_000, message: "workload exit reported by the heartbeat", intervalMs: 500 });
    const u3 = booted.find((i) => i.tags[TAG.podUid] === "u3")!;
    assert.match(await talkToAgent(u3.agentEndpoint!, ["health", "quit"]), /"workload":"running"/);
  });

  it("is idempotent: creating the same pod again returns its VM", async () => {
    const again = await provider.create(spec("u2"));
    assert.equal(again.id, booted.find((i) => i.tags[TAG.podUid] === "u2")!.id);
    assert.equal((await provider.list({ [TAG.cluster]: CLUSTER })).length, 3);
  });

  it("a new provider object on the same state folder lists the same VMs", async () => {
    const restarted = await newProvider();
    const listed = await restarted.list({ [TAG.cluster]: CLUSTER });
    assert.deepEqual(listed.map((i) => i.id).sort(), booted.map((i) => i.id).sort());
    assert.ok(listed.every((i) => i.ready && i.state === "running"));
    assert.deepEqual((await restarted.list({ [TAG.podUid]: "u2" })).map((i) => i.name), ["pp-u2"]);
    assert.deepEqual(await restarted.list({ [TAG.cluster]: "someone-else" }), []);
  });

  it("refuses a VM beyond the host's capacity with a quota error", async () => {
    const full = await newProvider({ maxVMs: 3 });
    await assert.rejects(full.create(spec("u4")), (error: ProviderError) => error.kind === "quota" && /3 VMs/.test(error.message));
    const tight = await newProvider({ maxMemoryMiB: 3 * SMALL.memoryMiB + 100 });
    await assert.rejects(tight.create(spec("u4")), (error: ProviderError) => error.kind === "quota" && /memory/.test(error.message));
  });

  it("shows a VM whose qemu died as terminated", async () => {
    const victim = booted[1]!;
    const { pid } = JSON.parse(await readFile(join(stateDir, "qemu", victim.id, "instance.json"), "utf8")) as { pid: number };
    process.kill(pid, "SIGKILL");
    const seen = await waitFor(async () => {
      const current = await provider.get(victim.id);
      return current?.state === "terminated" && current;
    }, { timeoutMs: 10_000, message: "terminated state" });
    assert.equal(seen.ready, false);
  });

  it("deletes every VM and leaves no qemu process and no state", async () => {
    const listed = await provider.list({});
    assert.equal(listed.length, 3);
    await Promise.all(listed.map((i) => provider.delete(i.id)));
    assert.deepEqual(await provider.list({}), []);
    assert.equal(await provider.get(listed[0]!.id), undefined);
    await provider.delete(listed[0]!.id);
    assert.deepEqual(await readdir(join(stateDir, "qemu")), []);
    assert.deepEqual(await processesMentioning(`${stateDir}/`), []);
  });
});
