/**
 * qemu VMs are detached on purpose (they outlive peerpods like cloud instances), so a suite that
 * fails before its teardown leaves them running, and their VPC bridge. Suites create the folders VMs
 * live under with `trackedTempDir`; the root hooks stop whatever VM is still running under one of
 * them and remove the bridges of state folders under them, and only those: other e2e runs on the
 * machine keep theirs.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { VM_FILES } from "../../src/providers/qemu/args.js";
import { ipArgs, parseBridges } from "../../src/providers/qemu/ip.js";
import { labelledStateDir } from "../../src/providers/qemu/vpc-addressing.js";
import { isVmProcessAlive, killGroup } from "../../src/providers/qemu/process.js";
import { atExit } from "../cluster/process.js";
import { waitFor } from "./wait.js";

export interface ProcessInfo {
  pid: number;
  /** Its process group. */
  pgid: number;
  argv: string[];
}

export interface LeftoverVm {
  /** The process to signal: its whole group when `group` (a VM's own group, as the provider starts it). */
  pid: number;
  group: boolean;
  /** The VM's folder. */
  dir: string;
}

/** The folder of the VM a qemu command line runs: its QMP socket's folder, every VM file sits beside it. */
export function vmDirOf(argv: string[]): string | undefined {
  const at = argv.indexOf("-qmp");
  const socket = at < 0 ? undefined : /^unix:([^,]+)/.exec(argv[at + 1] ?? "")?.[1];
  return socket?.endsWith(`/${VM_FILES.qmp}`) ? dirname(socket) : undefined;
}

/**
 * The VMs under any of `roots`, one per process group: the provider starts each VM in a group of
 * its own (qemu, or `timeout` around qemu for a probe VM). A matching process whose group leader is
 * not itself such a VM is signalled alone, so a sweep never takes an unrelated group with it.
 */
export function leftoverVms(processes: ProcessInfo[], roots: Iterable<string>): LeftoverVm[] {
  const prefixes = [...roots].map((root) => `${root.replace(/\/+$/, "")}/`);
  const vms = processes.flatMap((entry) => {
    const dir = vmDirOf(entry.argv);
    return dir && prefixes.some((prefix) => dir.startsWith(prefix)) ? [{ entry, dir }] : [];
  });
  const leaders = new Set(vms.filter(({ entry }) => entry.pid === entry.pgid).map(({ entry }) => entry.pgid));
  const byTarget = new Map<string, LeftoverVm>();
  for (const { entry, dir } of vms) {
    const vm = leaders.has(entry.pgid) ? { pid: entry.pgid, group: true, dir } : { pid: entry.pid, group: false, dir };
    byTarget.set(`${vm.group ? "g" : "p"}${vm.pid}`, vm);
  }
  return [...byTarget.values()];
}

/** The qemu VPC bridges (of `ip -j link show type bridge`) whose state folder lies under any of `roots`. */
export function leftoverBridges(bridges: { name: string; label?: string }[], roots: Iterable<string>): string[] {
  const prefixes = [...roots].map((root) => `${root.replace(/\/+$/, "")}/`);
  return bridges.filter(({ label }) => {
    const stateDir = label === undefined ? undefined : labelledStateDir(label);
    return stateDir !== undefined && prefixes.some((prefix) => `${stateDir}/`.startsWith(prefix));
  }).map(({ name }) => name);
}

/** The process group in a /proc/<pid>/stat line (the fifth field; the command name may hold spaces and parentheses). */
export function processGroupOf(stat: string): number | undefined {
  const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  return Number.isInteger(pgid) && pgid > 0 ? pgid : undefined;
}

const roots = new Set<string>();

/**
 * A fresh folder in the temp dir whose qemu VMs (under it, at any depth) the end of the run stops if
 * a suite leaves any; the folder itself is removed when the process exits, if its suite did not.
 */
export function trackedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // An interrupted run skips the root hooks; its exit hook still kills what is left (without waiting).
  if (roots.size === 0) atExit(stopVmsAndRemoveFolders);
  roots.add(dir);
  return dir;
}

function stopVmsAndRemoveFolders(): void {
  killVms(leftoversNow());
  removeLeftoverBridges();
  for (const root of roots) rmSync(root, { recursive: true, force: true, maxRetries: 3 });
}

/** Kills every VM still running under a tracked folder and waits until they are gone; returns them. */
export async function stopLeftoverVms(timeoutMs = 10_000): Promise<LeftoverVm[]> {
  const vms = leftoversNow();
  killVms(vms);
  await waitFor(async () => (await Promise.all(vms.map((vm) => isVmProcessAlive(vm.pid, vm.dir)))).every((alive) => !alive), {
    timeoutMs,
    message: `leftover qemu VMs to exit: ${vms.map((vm) => vm.dir).join(", ")}`,
  });
  return vms;
}

/** Removes the VPC bridges of state folders under a tracked folder; returns their names. None where `ip` cannot list bridges. */
export function removeLeftoverBridges(): string[] {
  if (roots.size === 0) return [];
  const listed = spawnSync("ip", ipArgs.bridges(), { encoding: "utf8" });
  if (listed.status !== 0) return [];
  const names = leftoverBridges(parseBridges(listed.stdout), roots);
  for (const name of names) spawnSync("ip", ipArgs.remove(name));
  return names;
}

function leftoversNow(): LeftoverVm[] {
  return roots.size === 0 ? [] : leftoverVms(runningProcesses(), roots);
}

function killVms(vms: LeftoverVm[]): void {
  for (const vm of vms) {
    try {
      if (vm.group) killGroup(vm.pid, "SIGKILL");
      else process.kill(vm.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function runningProcesses(): ProcessInfo[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const pgid = processGroupOf(readFileSync(`/proc/${entry}/stat`, "utf8"));
        const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean);
        return pgid === undefined ? [] : [{ pid: Number(entry), pgid, argv }];
      } catch {
        return []; // exited meanwhile
      }
    });
}
