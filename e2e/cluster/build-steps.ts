/**
 * The pieces `npm run cluster:build` is made of: commands that report progress, input hashes, and
 * folders whose stamp of those inputs lets a second build skip them.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const STAMP = ".stamp";
const PROGRESS_EVERY_MS = 20_000;
const GO_MISSING = "go is not on PATH (cluster:build needs Go: https://go.dev/dl/)";

const started = Date.now();

export const elapsed = (since: number): string => {
  const seconds = Math.round((Date.now() - since) / 1000);
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
};

export const say = (message: string): void => console.log(`[cluster:build +${elapsed(started)}] ${message}`);

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs a command; prints a progress line while it runs and its output when it fails. */
export async function run(label: string, command: string, args: string[], options: RunOptions = {}): Promise<string> {
  const since = Date.now();
  say(`${label} ...`);
  const timer = setInterval(() => say(`${label}: still running (${elapsed(since)})`), PROGRESS_EVERY_MS);
  try {
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("error", (error: NodeJS.ErrnoException) => reject(new Error(error.code === "ENOENT" && command === "go" ? GO_MISSING : `${command}: ${error.message}`)));
      child.on("close", (code) => {
        if (code === 0) resolve(stdout);
        else reject(new Error(`${label} failed (${command} ${args.join(" ")} exited ${code}):\n${(stderr || stdout).slice(-8000)}`));
      });
    });
    say(`${label}: done in ${elapsed(since)}`);
    return output;
  } finally {
    clearInterval(timer);
  }
}

export async function goVersion(): Promise<string> {
  const { stdout } = await promisify(execFile)("go", ["env", "GOVERSION"]).catch((error: NodeJS.ErrnoException) => {
    throw new Error(error.code === "ENOENT" ? GO_MISSING : `go env GOVERSION: ${error.message}`);
  });
  return stdout.trim();
}

export const hash = (parts: (string | Buffer)[]): string => {
  const digest = createHash("sha256");
  for (const part of parts) digest.update(part).update("\0");
  return digest.digest("hex");
};

export const hashFiles = async (prefix: string[], files: string[]): Promise<string> => hash([...prefix, ...(await Promise.all(files.map((file) => readFile(file))))]);

export interface Stamped {
  /** What is built, for the progress lines, e.g. "containerd v2.4.2". */
  title: string;
  dir: string;
  /** A hash of every input: a different key rebuilds. */
  key: string;
  /** Files the build leaves in `dir`; a missing one rebuilds. */
  outputs: string[];
  build(): Promise<void>;
}

/** Builds into `dir` unless its stamp matches `key` and every output is there; prints how long it took. */
export async function buildStamped({ title, dir, key, outputs, build }: Stamped): Promise<void> {
  const stamp = join(dir, STAMP);
  if (existsSync(stamp) && (await readFile(stamp, "utf8")) === key && outputs.every((file) => existsSync(file))) {
    say(`${title} is up to date in ${dir}`);
    return;
  }
  const since = Date.now();
  await mkdir(dir, { recursive: true });
  await rm(stamp, { force: true });
  await build();
  await writeFile(stamp, key);
  say(`${title} built in ${elapsed(since)}`);
}

export interface GoInstall {
  label: string;
  /** `module/path/cmd@version` packages of one module version. */
  packages: string[];
  /** Folder the binaries are moved into (by their package's last path element). */
  dir: string;
  flags?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * `go install pkg@version`: builds outside any module, so each upstream release gets exactly the
 * dependencies its own go.mod pins (and go.sum verifies), then moves the binaries into `dir`.
 */
export async function goInstall({ label, packages, dir, flags = [], env = {} }: GoInstall): Promise<void> {
  const gobin = await mkdtemp(join(dir, ".gobin-"));
  try {
    await run(label, "go", ["install", "-trimpath", ...flags, ...packages], { cwd: dir, env: { ...env, GOBIN: gobin } });
    for (const name of packages.map(binaryNameOf)) await rename(join(gobin, name), join(dir, name));
  } finally {
    await rm(gobin, { recursive: true, force: true });
  }
}

/** `github.com/x/y/cmd/tool@v1` → `tool`: the name `go install` gives a package's binary. */
export const binaryNameOf = (pkg: string): string => {
  const path = pkg.split("@")[0]!;
  const last = path.slice(path.lastIndexOf("/") + 1);
  // a major-version suffix (…/tool/v2) names the element before it
  return /^v\d+$/.test(last) ? path.split("/").at(-2)! : last;
};

/** `go build` of a main package of a local module into `output` (written under a temporary name first). */
export async function goBuild(label: string, moduleDir: string, pkg: string, output: string, flags: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  const partial = `${output}.partial`;
  await run(label, "go", ["build", "-trimpath", "-buildvcs=false", ...flags, "-o", partial, pkg], { cwd: moduleDir, env });
  await rename(partial, output);
}
