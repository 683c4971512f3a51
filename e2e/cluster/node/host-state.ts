/**
 * What a real node changes on the host outside its own folder, read before it starts so that
 * stopping it can put the host back and a test can check that nothing is left:
 * sysctls the kubelet and the bridge plugin set, mounts, bridges and veths, network namespaces,
 * cgroups, and the paths that containerd and the kubelet use whatever their root folders are.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Set by the kubelet at start (vm/…, kernel/…) and by the CNI bridge plugin (ip_forward). */
export const NODE_SYSCTLS = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
  "net/ipv4/ip_forward",
] as const;

/**
 * Paths the node's parts use whatever their configured folders: the device-plugin folder and
 * checkpoint (/var/lib/kubelet/device-plugins), the container log links (/var/log/containers),
 * the CNI result cache (/var/lib/cni), the shim sockets (/run/containerd/s).
 */
export const HARD_CODED_PATHS = ["/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/run/containerd", "/run/netns", "/var/run/netns"] as const;

const CGROUP_ROOT = "/sys/fs/cgroup";

export interface HostState {
  sysctls: Record<string, string>;
  /** Mount points under the watched folders. */
  mounts: string[];
  /** Bridges and veths, by name. */
  links: string[];
  /** Named network namespaces (/run/netns). */
  netns: string[];
  /** Top-level cgroups, as `hierarchy/name`. */
  cgroups: string[];
  /** Which of HARD_CODED_PATHS exist. */
  paths: string[];
}

const readSysctl = (name: string): string => readFileSync(join("/proc/sys", name), "utf8").trim();

/** Mount points (field 5 of mountinfo, octal escapes decoded), in mount order. */
export function mountPoints(mountinfo: string): string[] {
  return mountinfo
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ")[4]!.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
}

/** Mount points at or under any of `folders`. */
export function mountsUnder(mountinfo: string, folders: readonly string[]): string[] {
  return mountPoints(mountinfo).filter((point) => folders.some((folder) => point === folder || point.startsWith(`${folder}/`)));
}

function bridgesAndVeths(): string[] {
  const result = spawnSync("ip", ["-j", "-d", "link", "show"], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`ip -j -d link show: ${result.stderr || result.error?.message}`);
  const links = JSON.parse(result.stdout) as { ifname: string; linkinfo?: { info_kind?: string } }[];
  return links.filter((link) => ["bridge", "veth"].includes(link.linkinfo?.info_kind ?? "")).map((link) => link.ifname);
}

const listDirs = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((name) => statSync(join(dir, name)).isDirectory()) : []);

function topLevelCgroups(): string[] {
  return listDirs(CGROUP_ROOT).flatMap((hierarchy) => listDirs(join(CGROUP_ROOT, hierarchy)).map((name) => `${hierarchy}/${name}`));
}

/** The host as a node would change it; `folders` limits the mounts looked at (the node's folder and HARD_CODED_PATHS). */
export function readHostState(folders: readonly string[]): HostState {
  return {
    sysctls: Object.fromEntries(NODE_SYSCTLS.map((name) => [name, readSysctl(name)])),
    mounts: mountsUnder(readFileSync("/proc/self/mountinfo", "utf8"), [...folders, ...HARD_CODED_PATHS]),
    links: bridgesAndVeths(),
    netns: existsSync("/run/netns") ? readdirSync("/run/netns") : [],
    cgroups: topLevelCgroups(),
    paths: HARD_CODED_PATHS.filter((path) => existsSync(path)),
  };
}

/** What differs from `before`, one readable line per difference; empty when the host is as it was. */
export function hostChanges(before: HostState, after: HostState): string[] {
  const added = (kind: string, was: string[], now: string[]): string[] => now.filter((item) => !was.includes(item)).map((item) => `${kind} left behind: ${item}`);
  const sysctls = Object.entries(after.sysctls)
    .filter(([name, value]) => before.sysctls[name] !== value)
    .map(([name, value]) => `sysctl ${name.replaceAll("/", ".")} is ${value}, was ${before.sysctls[name]}`);
  return [
    ...sysctls,
    ...added("mount", before.mounts, after.mounts),
    ...added("network interface", before.links, after.links),
    ...added("network namespace", before.netns, after.netns),
    ...added("cgroup", before.cgroups, after.cgroups),
    ...added("path", before.paths, after.paths),
  ];
}
