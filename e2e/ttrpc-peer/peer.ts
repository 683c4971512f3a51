/**
 * The Go ttrpc peer (containerd/ttrpc's own client speaking Kata's hypervisor service): built once
 * into the cache folder, keyed by a hash of its sources, and run once per call.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SANDBOX_ANNOTATION as A } from "../../src/hypervisor/annotations.js";
import { cacheDir } from "../cluster/paths.js";

const run = promisify(execFile);
const MODULE_DIR = dirname(fileURLToPath(import.meta.url));

/** What one call printed: the response's fields, the call's duration, and the ttrpc status when it failed. */
export interface PeerResult {
  ms: number;
  /** A gRPC code name (`Unimplemented`, `DeadlineExceeded`, ...) when the call failed. */
  code?: string;
  message?: string;
  agentSocketPath?: string;
  version?: string;
}

/** Builds the peer unless a build of the same sources is cached; returns the binary's path. */
export async function buildPeer(): Promise<string> {
  const files = (await readdir(MODULE_DIR)).filter((f) => f.endsWith(".go") || f === "go.mod" || f === "go.sum").sort();
  const digest = createHash("sha256");
  for (const file of files) digest.update(file).update(await readFile(join(MODULE_DIR, file)));
  const binary = join(cacheDir(), `ttrpc-peer-${digest.digest("hex").slice(0, 16)}`, "ttrpc-peer");
  if (existsSync(binary)) return binary;
  await mkdir(dirname(binary), { recursive: true });
  const partial = `${binary}.partial`;
  await run("go", ["build", "-trimpath", "-o", partial, "."], { cwd: MODULE_DIR, env: { ...process.env, CGO_ENABLED: "0" }, timeout: 600_000 }).catch((error: Error & { stderr?: string }) => {
    throw new Error(`building the ttrpc peer failed: ${error.stderr || error.message}`);
  });
  await rename(partial, binary);
  return binary;
}

export class TtrpcPeer {
  constructor(
    readonly binary: string,
    readonly socket: string,
  ) {}

  async call(args: string[]): Promise<PeerResult> {
    const { stdout } = await run(this.binary, ["-socket", this.socket, ...args], { timeout: 600_000 }).catch((error: Error & { stderr?: string }) => {
      throw new Error(`ttrpc-peer ${args.join(" ")}: ${error.stderr || error.message}`);
    });
    return JSON.parse(stdout) as PeerResult;
  }

  version(version: string): Promise<PeerResult> {
    return this.call(["version", version]);
  }

  /** `netns` is the pod's network namespace on the node; empty: none, so the sandbox gets no pod network. */
  createVM(id: string, annotations: Record<string, string>, netns = ""): Promise<PeerResult> {
    return this.call(["create", id, "-netns", netns, ...Object.entries(annotations).flatMap(([key, value]) => ["-a", `${key}=${value}`])]);
  }

  startVM(id: string, timeoutSeconds = 120): Promise<PeerResult> {
    return this.call(["start", id, "-timeout", `${timeoutSeconds}s`]);
  }

  stopVM(id: string): Promise<PeerResult> {
    return this.call(["stop", id]);
  }

  /** CreateVM then StartVM, as the shim calls them: the agent socket and the time until the agent was reachable. */
  async createAndStart(id: string, annotations: Record<string, string>, startTimeoutSeconds: number, netns = ""): Promise<{ socket: string; ms: number }> {
    const started = Date.now();
    const created = await this.createVM(id, annotations, netns);
    if (created.code || !created.agentSocketPath) throw new Error(`CreateVM failed: ${created.code} ${created.message}`);
    const start = await this.startVM(id, startTimeoutSeconds);
    if (start.code) throw new Error(`StartVM failed: ${start.code} ${start.message}`);
    return { socket: created.agentSocketPath, ms: Date.now() - started };
  }
}

/** What the Kata shim's remote hypervisor sends for a pod (Kata's configured defaults where the pod sets nothing). */
export function shimAnnotations(namespace: string, pod: string, machineType = ""): Record<string, string> {
  return { [A.name]: pod, [A.namespace]: namespace, [A.machineType]: machineType, [A.vcpus]: "1", [A.memory]: "2048", [A.volumeName]: "" };
}
