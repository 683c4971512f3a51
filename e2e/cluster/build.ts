/**
 * `npm run cluster:build`: builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK
 * from Go modules into the cache folder, and copies KWOK's stage definitions next to it.
 * Idempotent: each folder carries a stamp of its inputs, and a matching stamp skips the build.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse as parseYaml } from "yaml";
import {
  CONTROL_PLANE_BINARIES,
  GO_MODULE_DIR,
  KUBERNETES_VERSION,
  KWOK_MODULE,
  KWOK_VERSION,
  binaryPath,
  controlPlaneDir,
  kwokBinary,
  kwokDir,
  kwokStagesFile,
} from "./paths.js";

/** KWOK stage folders (inside its module) that the launcher loads: fast node start, lease heartbeat, fast pods. */
const KWOK_STAGE_DIRS = ["kustomize/stage/node/fast", "kustomize/stage/node/heartbeat-with-lease", "kustomize/stage/pod/fast"];
const STAMP = ".stamp";
const PROGRESS_EVERY_MS = 20_000;

const started = Date.now();

const elapsed = (since: number): string => {
  const seconds = Math.round((Date.now() - since) / 1000);
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
};

const say = (message: string): void => console.log(`[cluster:build +${elapsed(started)}] ${message}`);

/** Runs a command; prints a progress line while it runs and its output when it fails. */
async function run(label: string, command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
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
      child.on("error", (error: NodeJS.ErrnoException) =>
        reject(new Error(error.code === "ENOENT" ? `${command} is not on PATH (cluster:build needs Go: https://go.dev/dl/)` : `${command}: ${error.message}`)),
      );
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

async function goVersion(): Promise<string> {
  const { stdout } = await promisify(execFile)("go", ["env", "GOVERSION"]).catch((error: NodeJS.ErrnoException) => {
    throw new Error(error.code === "ENOENT" ? "go is not on PATH (cluster:build needs Go: https://go.dev/dl/)" : `go env GOVERSION: ${error.message}`);
  });
  return stdout.trim();
}

const hash = (parts: (string | Buffer)[]): string => {
  const digest = createHash("sha256");
  for (const part of parts) digest.update(part).update("\0");
  return digest.digest("hex");
};

async function stampMatches(dir: string, key: string, outputs: string[]): Promise<boolean> {
  const stamp = join(dir, STAMP);
  return existsSync(stamp) && (await readFile(stamp, "utf8")) === key && outputs.every((file) => existsSync(file));
}

/** Everything that changes the control-plane binaries: the module, its mains, the Go toolchain, the flags. */
async function controlPlaneKey(goVersion: string, ldflags: string): Promise<string> {
  const files = [join(GO_MODULE_DIR, "go.mod"), join(GO_MODULE_DIR, "go.sum")];
  for (const name of CONTROL_PLANE_BINARIES) files.push(join(GO_MODULE_DIR, "cmd", name, "main.go"));
  return hash([goVersion, ldflags, ...(await Promise.all(files.map((file) => readFile(file))))]);
}

async function buildControlPlane(goVersion: string): Promise<void> {
  const ldflags = `-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}`;
  const dir = controlPlaneDir();
  const key = await controlPlaneKey(goVersion, ldflags);
  if (await stampMatches(dir, key, CONTROL_PLANE_BINARIES.map(binaryPath))) {
    say(`control plane ${KUBERNETES_VERSION} is up to date in ${dir}`);
    return;
  }
  await mkdir(dir, { recursive: true });
  await rm(join(dir, STAMP), { force: true });
  say(`building the control plane ${KUBERNETES_VERSION} into ${dir} (a cold build takes about 10 minutes on 2 cores)`);
  await run("go mod download", "go", ["mod", "download"], { cwd: GO_MODULE_DIR });
  for (const [i, name] of CONTROL_PLANE_BINARIES.entries()) {
    const partial = `${binaryPath(name)}.partial`;
    await run(`[${i + 1}/${CONTROL_PLANE_BINARIES.length}] go build ${name}`, "go", ["build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", partial, `./cmd/${name}`], {
      cwd: GO_MODULE_DIR,
    });
    await rename(partial, binaryPath(name));
  }
  await writeFile(join(dir, STAMP), key);
}

async function buildKwok(goVersion: string): Promise<void> {
  const dir = kwokDir();
  const ldflags = "-s -w";
  const key = hash([goVersion, ldflags, `${KWOK_MODULE}@${KWOK_VERSION}`, ...KWOK_STAGE_DIRS]);
  if (await stampMatches(dir, key, [kwokBinary(), kwokStagesFile()])) {
    say(`kwok ${KWOK_VERSION} is up to date in ${dir}`);
    return;
  }
  await mkdir(dir, { recursive: true });
  await rm(join(dir, STAMP), { force: true });
  // `go install module@version` builds outside any module, so KWOK gets the client-go it asks for.
  const gobin = await mkdtemp(join(dir, ".gobin-"));
  try {
    await run(`go install ${KWOK_MODULE}/cmd/kwok@${KWOK_VERSION}`, "go", ["install", "-trimpath", "-ldflags", ldflags, `${KWOK_MODULE}/cmd/kwok@${KWOK_VERSION}`], {
      cwd: dir,
      env: { GOBIN: gobin },
    });
    await rename(join(gobin, "kwok"), kwokBinary());
  } finally {
    await rm(gobin, { recursive: true, force: true });
  }
  await writeFile(kwokStagesFile(), await kwokStages());
  await writeFile(join(dir, STAMP), key);
}

/** The Stage documents of KWOK's stage folders, read from its module source, as one multi-document YAML. */
async function kwokStages(): Promise<string> {
  const info = JSON.parse(await run("go mod download kwok", "go", ["mod", "download", "-json", `${KWOK_MODULE}@${KWOK_VERSION}`], { cwd: kwokDir() })) as {
    Dir?: string;
    Error?: string;
  };
  if (!info.Dir) throw new Error(`go mod download ${KWOK_MODULE}@${KWOK_VERSION}: ${info.Error ?? "no module folder"}`);
  const documents: string[] = [];
  for (const stageDir of KWOK_STAGE_DIRS) {
    const folder = join(info.Dir, stageDir);
    const kustomization = parseYaml(await readFile(join(folder, "kustomization.yaml"), "utf8")) as { resources?: string[] };
    const files = kustomization.resources ?? (await readdir(folder)).filter((file) => file.endsWith(".yaml") && file !== "kustomization.yaml");
    for (const file of files) documents.push(`# from ${KWOK_MODULE}@${KWOK_VERSION}/${stageDir}/${file}\n${(await readFile(join(folder, file), "utf8")).trim()}\n`);
  }
  return documents.join("---\n");
}

try {
  const go = await goVersion();
  say(`using ${go}`);
  await buildControlPlane(go);
  await buildKwok(go);
  say(`all built in ${elapsed(started)}`);
} catch (error) {
  console.error(`cluster:build failed after ${elapsed(started)}: ${(error as Error).message}`);
  process.exitCode = 1;
}
