import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ProviderError } from "../types.js";
import { VM_FILES } from "./args.js";
import { qmpCommand } from "./qmp.js";

/**
 * Starts qemu as a detached process in its own process group, output appended to `logFile`, not
 * waited for: the VM outlives this process like a cloud instance outlives its API client.
 */
export function spawnDetached(binary: string, args: string[], logFile: string): { pid: number; exited: () => boolean } {
  const log = openSync(logFile, "a");
  try {
    const child = spawn(binary, args, { detached: true, stdio: ["ignore", log, log] });
    let exited = false;
    child.once("exit", () => (exited = true));
    child.once("error", () => (exited = true));
    child.unref();
    if (child.pid === undefined) throw new Error(`cannot start ${binary}`);
    return { pid: child.pid, exited: () => exited };
  } finally {
    closeSync(log);
  }
}

/** The state letter of /proc/<pid>/stat ("R", "S", "Z", ...), after the command name. */
export function procState(stat: string): string | undefined {
  return /\)\s+(\S)/.exec(stat.slice(stat.lastIndexOf(")")))?.[1];
}

/** True while `pid` runs and is the qemu of the VM in `dir` (its command line names `dir`; pids get reused). */
export async function isVmProcessAlive(pid: number, dir: string): Promise<boolean> {
  try {
    const [stat, cmdline] = await Promise.all([readFile(`/proc/${pid}/stat`, "utf8"), readFile(`/proc/${pid}/cmdline`, "utf8")]);
    const state = procState(stat);
    return state !== "Z" && state !== "X" && cmdline.includes(`${dir}/`);
  } catch {
    return false;
  }
}

/** Signals the VM's whole process group; a group that is already gone is fine. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Asks the VM's qemu to quit, then kills its process group if it has not gone within `graceMs`. */
export async function stopVm(pid: number, dir: string, graceMs = 5000): Promise<void> {
  if (!(await isVmProcessAlive(pid, dir))) return;
  await qmpCommand(join(dir, VM_FILES.qmp), "quit", 2000).catch(() => killGroup(pid, "SIGTERM"));
  if (await gone(pid, dir, graceMs)) return;
  killGroup(pid, "SIGKILL");
  if (!(await gone(pid, dir, 5000))) throw new ProviderError("retryable", `qemu process ${pid} survived SIGKILL`);
}

async function gone(pid: number, dir: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isVmProcessAlive(pid, dir))) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return !(await isVmProcessAlive(pid, dir));
}
