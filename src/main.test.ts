import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testCerts } from "./test-support/tls.js";

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 30_000 });

describe("peerpods CLI", function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), "peerpods-cli-"))));
  after(() => rm(dir, { recursive: true, force: true }));

  it("stops with a one-line error naming a bad flag", () => {
    const result = cli(["serve", "--webhook-port", "70000"]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /option '--webhook-port <port>' argument '70000' is invalid\. must be a whole number from 0 to 65535/);
  });

  it("refuses at start a --pods-dir whose sandbox sockets would not fit a unix socket path", () => {
    const result = cli(["serve", "--parts", "hypervisor", "--pods-dir", "/var/lib/peerpods/hypervisor/pods"]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /option '--pods-dir <dir>' argument '\/var\/lib\/peerpods\/hypervisor\/pods' is invalid\. is too long: .* would be 110 bytes, over the 107-byte limit of a unix socket path; use a folder of at most 30 bytes/);
  });

  it("names the environment variable's flag when the value comes from the environment", () => {
    const result = cli(["serve"], { PEERPODS_PARTS: "webhook,teleporter" });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /--parts <list>.*must be one of webhook, extender, advertiser, worker, hypervisor/);
  });

  it("validates a policy file and prints every error with its path", async () => {
    const file = join(dir, "policy.yaml");
    await writeFile(file, "apiVersion: peerpods.io/v1alpha1\nkind: PeerPodPolicy\nspec:\n  nodes: {vmsPerNode: -1}\n  scheduling: {strategy: Random}\n");
    const bad = cli(["policy", "validate", file]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /spec\.nodes\.vmsPerNode: Too small/);
    assert.match(bad.stderr, /spec\.scheduling\.strategy: Invalid option/);
    await writeFile(file, "runtimeClassNames: [kata-remote, kata-qemu-remote]\n");
    await writeFile(file, "defaultInstanceType: huge\nlimits: {maxVMs: ten}\nprovider: {name: qemu, qemu: {accelerator: hvf, maxVMs: -1}}\n");
    const all = cli(["policy", "validate", file]);
    assert.equal(all.status, 1);
    const lines = all.stderr.trim().split("\n").map((line) => line.slice(file.length + 2).split(":")[0]);
    assert.deepEqual(lines.sort(), ["defaultInstanceType", "limits.maxVMs", "provider.qemu.accelerator", "provider.qemu.maxVMs"], all.stderr);
    await writeFile(file, "runtimeClassNames: [kata-remote, kata-qemu-remote]\n");
    const good = cli(["policy", "validate", file]);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /valid/);
  });

  it("has --help for every command", () => {
    for (const args of [["--help"], ["serve", "--help"], ["certs", "--help"], ["policy", "validate", "--help"]]) {
      const result = cli(args);
      assert.equal(result.status, 0);
      assert.match(result.stdout, /Usage: peerpods/);
    }
  });

  it("serves the webhook without a cluster and exits 0 on SIGTERM", async () => {
    const certs = await testCerts();
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/main.ts", "serve", "--parts", "webhook", "--policy-file", "/dev/null", "--tls-cert", certs.certFile, "--tls-key", certs.keyFile, "--webhook-port", "0", "--metrics-port", "0", "--bind-address", "127.0.0.1"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 30_000;
    while (!output.includes("peerpods serving") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(output, /peerpods serving/);
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0);
    assert.match(output, /shutting down/);
  });
});
