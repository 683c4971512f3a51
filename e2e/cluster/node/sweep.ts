/**
 * Puts the host back the way it was before a real node started (see host-state.ts), whatever the
 * node left: its containers (by cgroup) and other processes (by folder), mounts, bridge and veths,
 * network namespaces, cgroups, sysctls, the hard-coded paths it created, and its folder.
 * Synchronous, so the exit hook of an interrupted run can use it too.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidsMentioning } from "../process.js";
import { HARD_CODED_PATHS, mountsUnder, readHostState, type HostState } from "./host-state.js";

const CGROUP_ROOT = "/sys/fs/cgroup";
const KILL_ROUNDS = 50;
const ROUND_MS = 100;

const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Every folder of a cgroup tree, deepest first. */
function cgroupTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const children = readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((path) => statSync(path, { throwIfNoEntry: false })?.isDirectory());
  return [...children.flatMap(cgroupTree), dir];
}

const tasksOf = (cgroup: string): number[] =>
  (existsSync(join(cgroup, "cgroup.procs")) ? readFileSync(join(cgroup, "cgroup.procs"), "utf8") : "").split("\n").filter(Boolean).map(Number);

/**
 * SIGKILLs what runs in the new cgroups (the containers) first, while their shims are there to reap
 * them, then what mentions the folder (containerd, kubelet, shims), until nothing is left.
 */
function killEverything(newCgroups: string[], dir: string): string[] {
  const inCgroups = (): number[] => [...new Set(newCgroups.flatMap((cgroup) => cgroupTree(join(CGROUP_ROOT, cgroup)).flatMap(tasksOf)))];
  const killed = new Set<number>();
  for (let round = 0; round < KILL_ROUNDS; round += 1) {
    const containers = inCgroups();
    const others = containers.length === 0 || round >= 3 ? pidsMentioning(dir) : [];
    if (containers.length === 0 && others.length === 0) break;
    for (const pid of [...containers, ...others]) {
      killed.add(pid);
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    sleepSync(ROUND_MS);
  }
  return killed.size ? [`killed ${killed.size} processes`] : [];
}

function unmountAll(folders: string[], before: HostState): string[] {
  const notes: string[] = [];
  for (let pass = 0; pass < 5; pass += 1) {
    const points = mountsUnder(readFileSync("/proc/self/mountinfo", "utf8"), folders).filter((point) => !before.mounts.includes(point));
    if (points.length === 0) break;
    for (const point of points.reverse()) {
      if (spawnSync("umount", [point]).status !== 0) spawnSync("umount", ["-l", point]);
      notes.push(`unmounted ${point}`);
    }
  }
  return notes;
}

/**
 * Removes what the node added since `before` and restores the sysctls; returns what it did, one line
 * each. A step that fails is reported in its line and the others still run (leftovers() tells what stayed).
 */
export function sweepHost(before: HostState, dir: string): string[] {
  const notes: string[] = [];
  const attempt = (done: string, step: () => void): void => {
    try {
      step();
      notes.push(done);
    } catch (error) {
      notes.push(`could not do "${done}": ${(error as Error).message}`);
    }
  };
  const added = (was: string[], now: string[]): string[] => now.filter((item) => !was.includes(item));
  const newCgroups = added(before.cgroups, readHostState([dir]).cgroups);
  notes.push(...killEverything(newCgroups, dir), ...unmountAll([dir, ...HARD_CODED_PATHS], before));
  const after = readHostState([dir]);
  for (const name of added(before.netns, after.netns)) {
    attempt(`removed network namespace ${name}`, () => {
      spawnSync("umount", [join("/run/netns", name)]);
      rmSync(join("/run/netns", name), { force: true });
    });
  }
  for (const link of added(before.links, after.links)) attempt(`deleted interface ${link}`, () => spawnSync("ip", ["link", "del", link]));
  for (const cgroup of newCgroups) attempt(`removed cgroup ${cgroup}`, () => cgroupTree(join(CGROUP_ROOT, cgroup)).forEach((folder) => rmdirSync(folder)));
  for (const [name, value] of Object.entries(before.sysctls)) {
    if (after.sysctls[name] !== value) attempt(`restored ${name.replaceAll("/", ".")} to ${value}`, () => writeFileSync(join("/proc/sys", name), value));
  }
  for (const path of added(before.paths, after.paths)) attempt(`removed ${path}`, () => rmSync(path, { recursive: true, force: true, maxRetries: 3 }));
  attempt(`removed ${dir}`, () => rmSync(dir, { recursive: true, force: true, maxRetries: 3 }));
  return notes;
}
