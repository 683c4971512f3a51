import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";

/**
 * Child processes that must never outlive this one. Each runs in its own process group (so a
 * component's own children die with it), is killed on exit and on SIGINT/SIGTERM, and, where
 * `setpriv` exists, gets SIGKILL from the kernel if this process dies without cleaning up.
 */
const live = new Set<ManagedProcess>();
const exitCleanups = new Set<() => void>();
const SETPRIV = "/usr/bin/setpriv";
const usePdeathsig = existsSync(SETPRIV);
let hooksInstalled = false;

export interface ManagedProcess {
  name: string;
  logFile: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<string>;
  /** `signal` (default SIGTERM) to the process group, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts a process with stdout and stderr appended to its log file. */
export function startProcess(options: SpawnOptions): ManagedProcess {
  installExitHooks();
  const log = openSync(options.logFile, "a");
  const [command, args] = usePdeathsig ? [SETPRIV, ["--pdeathsig", "KILL", "--", options.command, ...options.args]] : [options.command, options.args];
  const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", log, log], detached: true });
  closeSync(log);
  const exited = new Promise<string>((resolve) => {
    child.on("exit", (code, signal) => {
      live.delete(managed);
      resolve(signal ?? String(code));
    });
    child.on("error", (error) => {
      live.delete(managed);
      resolve(`spawn failed: ${error.message}`);
    });
  });
  const managed: ManagedProcess = {
    name: options.name,
    logFile: options.logFile,
    child,
    exited,
    async stop(graceMs = 5000, signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
      signalGroup(child, signal);
      const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      // the group may hold children of the component that outlived it
      signalGroup(child, "SIGKILL");
    },
  };
  live.add(managed);
  return managed;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Kills every live process at once, then runs the exit cleanups; synchronous (usable from an 'exit' handler). */
export function killAll(): void {
  for (const managed of live) signalGroup(managed.child, "SIGKILL");
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // best effort: the process is going away
    }
  }
}

/** Registers a synchronous cleanup (e.g. removing a data dir) for when this process exits; returns its removal. */
export function atExit(cleanup: () => void): () => void {
  installExitHooks();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAll);
  for (const [signal, number] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]] as const) {
    process.on(signal, () => {
      if (signalOwner && !signalOwner.interrupted) {
        signalOwner.interrupted = true;
        signalOwner.handler(signal);
        return;
      }
      killAll();
      process.exit(128 + number);
    });
  }
}

let signalOwner: { handler: (signal: NodeJS.Signals) => void; interrupted: boolean } | undefined;

/**
 * Hands the first SIGINT/SIGTERM/SIGHUP to `handler` (a graceful teardown) instead of killing
 * everything at once; a second signal, and the exit hook, still kill whatever is left.
 */
export function onFirstSignal(handler: (signal: NodeJS.Signals) => void): void {
  installExitHooks();
  signalOwner = { handler, interrupted: false };
}

/** The last `lines` lines of a log file (reads at most the last 64 KiB). */
export function tail(file: string, lines = 40): string {
  if (!existsSync(file)) return "(no log file)";
  const size = statSync(file).size;
  const text = readFileSync(file).subarray(Math.max(0, size - 64 * 1024)).toString("utf8");
  return text.split("\n").slice(-lines - 1).join("\n");
}

/** Pids (other than this process) whose command line mentions `text`; synchronous, so usable at exit. */
export function pidsMentioning(text: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}
