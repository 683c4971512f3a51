/**
 * The node DaemonSet's shim install (manifests/daemonset, init container install-shim): its script
 * run against a folder standing for the host's root, the result read by the real containerd's
 * `config dump`, and the DaemonSet validated by the apiserver (`kubectl apply --dry-run=server`).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { accessSync, constants, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { KubernetesObject, V1DaemonSet } from "@kubernetes/client-node";
import { containerdBinary } from "./cluster/node/paths.js";
import { cluster } from "./setup.js";
import { trackedTempDir } from "./support/leftovers.js";
import { applyObjects, loadManifests, MANIFESTS_DIR } from "./support/manifests.js";

const run = promisify(execFile);
const SHIM_PATH = "/opt/peerpods/bin/containerd-shim-peerpods-v2";

const daemonSetObjects = (): Promise<KubernetesObject[]> => loadManifests(join(MANIFESTS_DIR, "daemonset"));

async function installScript(): Promise<{ script: string; image: string }> {
  const daemonSet = (await daemonSetObjects()).find((o) => o.kind === "DaemonSet") as V1DaemonSet;
  const init = daemonSet.spec!.template.spec!.initContainers?.find((c) => c.name === "install-shim");
  assert.ok(init?.command, "the DaemonSet has an install-shim init container with a command");
  assert.deepEqual(init.command.slice(0, 2), ["sh", "-euc"]);
  return { script: init.command[2]!, image: init.image! };
}

/** Runs the init container's script with `host` as the host's root; the shim it copies is a stand-in file. */
async function install(host: string): Promise<{ code: number; stderr: string }> {
  const { script } = await installScript();
  const shim = join(host, "..", "shim-from-image");
  writeFileSync(shim, "#!/bin/sh\necho shim\n");
  try {
    await run("sh", ["-euc", script], { env: { PATH: process.env.PATH, HOST: host, SHIM: shim } });
    return { code: 0, stderr: "" };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    if (typeof failed.code !== "number") throw error;
    return { code: failed.code, stderr: failed.stderr ?? "" };
  }
}

/** The runtimes containerd would run with that config, from its own `config dump` (imports resolved). */
async function containerdRuntimes(config: string): Promise<Record<string, Record<string, string>>> {
  const { stdout } = await run(containerdBinary("containerd"), ["--config", config, "config", "dump"]);
  const runtimes: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | undefined;
  for (const line of stdout.split("\n")) {
    const table = /^\s*\[plugins\.'io\.containerd\.cri\.v1\.runtime'\.containerd\.runtimes\.([\w-]+)\]$/.exec(line);
    if (table) current = runtimes[table[1]!] = {};
    else if (/^\s*\[/.test(line)) current = undefined;
    const field = /^\s*(runtime_type|runtime_path) = '(.*)'$/.exec(line);
    if (current && field) current[field[1]!] = field[2]!;
  }
  return runtimes;
}

describe("node DaemonSet: installing containerd-shim-peerpods-v2 on a node", function () {
  this.timeout(60_000);

  it("on a host without config.toml: the shim, executable, and containerd maps handler peerpods to it, runc kept", async () => {
    const host = join(trackedTempDir("pp-install-"), "root");
    assert.equal((await install(host)).code, 0);
    accessSync(join(host, SHIM_PATH), constants.X_OK);
    const runtimes = await containerdRuntimes(join(host, "etc/containerd/config.toml"));
    assert.deepEqual(runtimes.peerpods, { runtime_type: "io.containerd.peerpods.v2", runtime_path: SHIM_PATH });
    assert.equal(runtimes.runc?.runtime_type, "io.containerd.runc.v2");
  });

  it("on a host with its own config.toml: keeps it, imports the runtime once however often it runs", async () => {
    const host = join(trackedTempDir("pp-install-"), "root");
    const config = join(host, "etc/containerd/config.toml");
    await run("mkdir", ["-p", join(host, "etc/containerd")]);
    writeFileSync(config, "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata-remote]\n  runtime_type = 'io.containerd.kata-remote.v2'\n");
    assert.equal((await install(host)).code, 0);
    assert.equal((await install(host)).code, 0);
    assert.equal(readFileSync(config, "utf8").match(/conf\.d\/peerpods\.toml/g)?.length, 1);
    const runtimes = await containerdRuntimes(config);
    assert.equal(runtimes["kata-remote"]?.runtime_type, "io.containerd.kata-remote.v2");
    assert.deepEqual(runtimes.peerpods, { runtime_type: "io.containerd.peerpods.v2", runtime_path: SHIM_PATH });
  });

  it("on a host whose config.toml has imports of its own: refuses with what to add, and leaves config.toml alone", async () => {
    const host = join(trackedTempDir("pp-install-"), "root");
    const config = join(host, "etc/containerd/config.toml");
    await run("mkdir", ["-p", join(host, "etc/containerd")]);
    const own = "version = 3\nimports = ['/etc/containerd/other.toml']\n";
    writeFileSync(config, own);
    const result = await install(host);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /has its own imports: add 'conf\.d\/peerpods\.toml' to them/);
    assert.equal(readFileSync(config, "utf8"), own);
  });

  it("the apiserver accepts the DaemonSet and its RBAC (server-side dry run)", async () => {
    const kc = cluster().kc;
    const namespace = (await loadManifests(join(MANIFESTS_DIR, "base", "namespace.yaml")))[0]!;
    await applyObjects(kc, [namespace]);
    const objects = await daemonSetObjects();
    const accepted = await applyObjects(kc, objects, { dryRun: true });
    assert.deepEqual(accepted.map((o) => o.kind).sort(), objects.map((o) => o.kind).sort());
    const daemonSet = accepted.find((o) => o.kind === "DaemonSet") as V1DaemonSet;
    assert.equal(daemonSet.spec!.template.spec!.initContainers?.[0]?.image, (await installScript()).image);
  });
});
