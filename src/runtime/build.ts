/**
 * `npm run runtime:build`: the Go data plane's binaries, built from this module and the Go module
 * proxy into `${PEERPODS_CACHE_DIR:-~/.cache/peerpods}`: peerpods-agent, peerpods-agentctl, the
 * node's containerd-shim-peerpods-v2 and peerpods-podnet (static, CGO off) in `runtime-<hash of the sources>/`, and runc for the pod VM (static PIE; cgo
 * for its nsexec, no seccomp) in `runc-<version>/`. Each folder is skipped when its stamp matches.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { cacheDir } from "../providers/qemu/image/paths.js";

const run = promisify(execFile);
const MODULE_DIR = fileURLToPath(new URL(".", import.meta.url));
const STAMP = ".stamp";
export const RUNC_MODULE = "github.com/opencontainers/runc";
export const RUNC_VERSION = "v1.5.3";
/** runc's own static build (its Makefile's `static`), less seccomp: the VM has no libseccomp. */
const RUNC_TAGS = "urfave_cli_no_docs netgo osusergo";
const RUNC_LDFLAGS = `-s -w -X main.gitCommit=${RUNC_VERSION} -linkmode external -extldflags -static-pie`;
const GO_COMMANDS = ["peerpods-agent", "peerpods-agentctl", "containerd-shim-peerpods-v2", "peerpods-podnet"] as const;

export interface RuntimeBinaries {
  agent: string;
  agentctl: string;
  /** The node's containerd shim, runtime type io.containerd.peerpods.v2. */
  shim: string;
  /** The node's `peerpods-podnet attach|detach`: the VXLAN between a pod's netns and its VM. */
  podnet: string;
  runc: string;
  /** Hash of everything the binaries were built from: the pod VM image's inputs include it. */
  key: string;
}

/** Runs go; a step with a label is reported with its duration. */
async function go(label: string | undefined, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  const started = Date.now();
  try {
    const { stdout } = await run("go", args, { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 });
    if (label) console.log(`[runtime:build] ${label}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return stdout;
  } catch (error) {
    const { code, stderr } = error as NodeJS.ErrnoException & { stderr?: string };
    if (code === "ENOENT") throw new Error("go is not on PATH (runtime:build needs Go)", { cause: error });
    throw new Error(`${label ?? "go"} failed (go ${args.join(" ")}):\n${(stderr ?? (error as Error).message).slice(-8000)}`, { cause: error });
  }
}

/** The module's Go sources (tests aside), go.mod/go.sum and protos, relative path and content, in a stable order. */
async function moduleSources(): Promise<[string, Buffer][]> {
  const entries = await readdir(MODULE_DIR, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile() && !e.name.endsWith("_test.go") && (/\.(go|proto)$/.test(e.name) || e.name === "go.mod" || e.name === "go.sum"))
    .map((e) => relative(MODULE_DIR, join(e.parentPath, e.name)))
    .sort();
  return Promise.all(files.map(async (file): Promise<[string, Buffer]> => [file, await readFile(join(MODULE_DIR, file))]));
}

function hash(parts: (string | Buffer)[]): string {
  const digest = createHash("sha256");
  for (const part of parts) digest.update(part).update("\0");
  return digest.digest("hex").slice(0, 16);
}

async function stampMatches(dir: string, key: string, outputs: string[]): Promise<boolean> {
  const stamp = join(dir, STAMP);
  return existsSync(stamp) && (await readFile(stamp, "utf8")) === key && outputs.every((file) => existsSync(file));
}

/** Builds into `dir` unless its stamp says `key` was built there; outputs appear whole or not at all. */
async function buildOnce(dir: string, key: string, outputs: string[], build: (partial: (output: string) => string) => Promise<void>): Promise<void> {
  if (await stampMatches(dir, key, outputs)) return;
  await mkdir(dir, { recursive: true });
  await build((output) => `${output}.partial`);
  for (const output of outputs) await rename(`${output}.partial`, output);
  await writeFile(join(dir, STAMP), key);
}

async function buildCommands(goVersion: string): Promise<{ dir: string; key: string }> {
  const sources = await moduleSources();
  const key = hash([goVersion, ...sources.flat()]);
  const dir = join(cacheDir(), `runtime-${key}`);
  const outputs = GO_COMMANDS.map((name) => join(dir, name));
  await buildOnce(dir, key, outputs, async (partial) => {
    for (const name of GO_COMMANDS) {
      const ldflags = `-s -w -X main.version=${key}`;
      await go(`go build ${name}`, ["build", "-trimpath", "-ldflags", ldflags, "-o", partial(join(dir, name)), `./cmd/${name}`], { cwd: MODULE_DIR, env: { CGO_ENABLED: "0" } });
    }
  });
  return { dir, key };
}

async function buildRunc(goVersion: string): Promise<{ binary: string; key: string }> {
  const key = hash([goVersion, RUNC_VERSION, RUNC_TAGS, RUNC_LDFLAGS]);
  const dir = join(cacheDir(), `runc-${RUNC_VERSION}`);
  const binary = join(dir, "runc");
  await buildOnce(dir, key, [binary], async (partial) => {
    const info = JSON.parse(await go(`go mod download runc ${RUNC_VERSION}`, ["mod", "download", "-json", `${RUNC_MODULE}@${RUNC_VERSION}`], { cwd: MODULE_DIR })) as { Dir?: string };
    if (!info.Dir) throw new Error(`go mod download ${RUNC_MODULE}@${RUNC_VERSION} gave no folder`);
    const args = ["build", "-trimpath", "-buildmode=pie", "-tags", RUNC_TAGS, "-ldflags", RUNC_LDFLAGS, "-o", partial(binary), "."];
    await go(`go build runc ${RUNC_VERSION} (static, cgo)`, args, { cwd: info.Dir, env: { CGO_ENABLED: "1" } });
  });
  return { binary, key };
}

/** Builds what is missing or stale and answers where the binaries are. */
export async function buildRuntime(): Promise<RuntimeBinaries> {
  const goVersion = (await go(undefined, ["env", "GOVERSION"], { cwd: MODULE_DIR })).trim();
  const commands = await buildCommands(goVersion);
  const runc = await buildRunc(goVersion);
  return {
    agent: join(commands.dir, "peerpods-agent"),
    agentctl: join(commands.dir, "peerpods-agentctl"),
    shim: join(commands.dir, "containerd-shim-peerpods-v2"),
    podnet: join(commands.dir, "peerpods-podnet"),
    runc: runc.binary,
    key: hash([commands.key, runc.key]),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildRuntime().then(
    (binaries) => console.log(`[runtime:build] up to date: ${binaries.agent}, ${binaries.agentctl}, ${binaries.shim}, ${binaries.podnet}, ${binaries.runc}`),
    (error: unknown) => {
      console.error(`runtime:build failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
