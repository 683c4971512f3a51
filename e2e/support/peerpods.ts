import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildRuntime } from "../../src/runtime/build.js";
import { atExit, startProcess, type ManagedProcess } from "../cluster/process.js";
import { localCerts } from "./certs.js";
import { trackedTempDir } from "./leftovers.js";
import { freePorts } from "./ports.js";
import { waitFor } from "./wait.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface PeerpodsOptions {
  /** Extra `serve` flags, e.g. ["--parts", "webhook"]. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  kubeconfig?: string;
  /** Wait for /readyz (default) or only for /healthz (a part that cannot get ready is under test). */
  waitUntil?: "ready" | "healthy";
}

export interface Peerpods {
  webhookPort: number;
  extenderPort: number;
  metricsPort: number;
  /** https://127.0.0.1:WEBHOOK_PORT */
  webhookUrl: string;
  /** The CA of its serving certificate, base64 (for caBundle fields). */
  caBundle: string;
  stateDir: string;
  logFile: string;
  /** Its JSON log lines written so far, parsed; peerpods buffers lines for up to 100 ms, so look for a new one with waitFor. */
  logs(): Record<string, unknown>[];
  /** Resolves with the exit code or signal once it has exited. */
  exited: Promise<string>;
  /** Sends `signal` (default SIGTERM) and waits for the exit (SIGKILL after 15 s). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  kill(): Promise<void>;
}

const running = new Set<Peerpods>();
const startTimes = new Map<Peerpods, number>();
let logsDir: string | undefined;
let started = 0;

/** One folder for this run's peerpods logs (kept after a process exits, for failure reports), removed at exit. */
function nextLogFile(): string {
  if (!logsDir) {
    const dir = mkdtempSync(join(tmpdir(), "peerpods-e2e-logs-"));
    atExit(() => rmSync(dir, { recursive: true, force: true }));
    logsDir = dir;
  }
  started += 1;
  return join(logsDir, `peerpods-${started}.log`);
}

/** The peerpods processes started by this run that have not exited. */
export const runningPeerpods = (): Peerpods[] => [...running];

/** Every peerpods process this run started at or after `time` (ms since the epoch), exited or not. */
export const peerpodsStartedSince = (time: number): Peerpods[] => [...startTimes].filter(([, at]) => at >= time).map(([peerpods]) => peerpods);

/** Runs `peerpods serve` from source as a child process on free loopback ports; resolves once it is ready. */
export async function startPeerpods(options: PeerpodsOptions = {}): Promise<Peerpods> {
  const [webhookPort, extenderPort, metricsPort] = (await freePorts(3)) as [number, number, number];
  const certs = await localCerts();
  const stateDir = trackedTempDir("peerpods-e2e-");
  const forgetStateDir = atExit(() => rmSync(stateDir, { recursive: true, force: true }));
  const logFile = nextLogFile();
  const args = [
    "--import",
    "tsx",
    join(REPO, "src/main.ts"),
    "serve",
    "--bind-address=127.0.0.1",
    `--webhook-port=${webhookPort}`,
    `--extender-port=${extenderPort}`,
    `--metrics-port=${metricsPort}`,
    `--tls-cert=${certs.files.cert}`,
    `--tls-key=${certs.files.key}`,
    `--state-dir=${stateDir}`,
    "--log-level=debug",
    ...(options.kubeconfig ? [`--kubeconfig=${options.kubeconfig}`] : []),
    ...(options.args ?? []),
  ];
  // The hypervisor part ties pods' network namespaces to their VMs with peerpods-podnet, built with the node's shim.
  const env = { PEERPODS_PODNET_BINARY: (await buildRuntime()).podnet, ...options.env };
  const child: ManagedProcess = startProcess({ name: "peerpods", command: process.execPath, args, logFile, cwd: REPO, env });
  const peerpods: Peerpods = {
    webhookPort,
    extenderPort,
    metricsPort,
    webhookUrl: `https://127.0.0.1:${webhookPort}`,
    caBundle: certs.caBundle,
    stateDir,
    logFile,
    logs: () => parseLogLines(readFileSync(logFile, "utf8")),
    exited: child.exited,
    stop: (signal = "SIGTERM") => child.stop(15_000, signal),
    kill: () => child.stop(0, "SIGKILL"),
  };
  running.add(peerpods);
  startTimes.set(peerpods, Date.now());
  void child.exited.then(() => {
    running.delete(peerpods);
    forgetStateDir();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const endpoint = `http://127.0.0.1:${metricsPort}/${options.waitUntil === "healthy" ? "healthz" : "readyz"}`;
  const exitedEarly = child.exited.then((status) => {
    throw new Error(`peerpods exited (${status}) before it was ready:\n${readFileSync(logFile, "utf8").slice(-4000)}`);
  });
  try {
    await Promise.race([waitFor(async () => (await fetch(endpoint)).ok, { timeoutMs: 30_000, intervalMs: 100, message: `peerpods ${endpoint}` }), exitedEarly]);
  } catch (error) {
    await peerpods.kill();
    throw error;
  }
  return peerpods;
}

function parseLogLines(text: string): Record<string, unknown>[] {
  return text.split("\n").flatMap((line) => {
    if (!line.startsWith("{")) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}
