/**
 * A network namespace on the host standing for the one CNI makes for a pod: a veth whose pod end is
 * `eth0` with 10.199.N.2/24 and a default route via the host end, 10.199.N.1/24 (N picked among
 * those no host route names).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { mountPoints } from "../cluster/node/host-state.js";
import { waitFor } from "./wait.js";

const run = promisify(execFile);

export interface PodNetns {
  /** The bind-mounted namespace, as CNI hands it to the runtime (`/run/netns/NAME`). */
  path: string;
  podIp: string;
  /** Deletes the namespace and the veth; what is already gone is fine. */
  remove(): Promise<void>;
}

export interface LinkInfo {
  ifname: string;
  /** The qemu provider labels its VPC bridge with its state folder. */
  ifalias?: string;
  linkinfo?: { info_kind?: string };
  stats64?: { rx?: { bytes: number }; tx?: { bytes: number } };
}

const ip = async (...args: string[]): Promise<string> => (await run("ip", args)).stdout;

/** A third octet that no host route names (10.199.N.x) yet. */
async function freeSubnet(): Promise<number> {
  const routes = await ip("-4", "route", "show", "table", "all");
  const free = Array.from({ length: 250 }, (_, i) => i + 2).filter((n) => !routes.includes(`10.199.${n}.`));
  if (free.length === 0) throw new Error("no free 10.199.N.0/24 on this host");
  return free[randomBytes(1)[0]! % free.length]!;
}

const NETNS_DIR = "/run/netns";
const isMountPoint = (path: string): boolean => mountPoints(readFileSync("/proc/self/mountinfo", "utf8")).includes(path);

export async function makePodNetns(): Promise<PodNetns> {
  // `ip netns add` makes the folder (and a bind mount of it on itself) on first use; `ip netns del` leaves both.
  const before = { existed: existsSync(NETNS_DIR), mounted: isMountPoint(NETNS_DIR) };
  const tag = randomBytes(4).toString("hex");
  const name = `pp-e2e-${tag}`;
  const hostLink = `ppveth${tag}`;
  const n = await freeSubnet();
  const [hostIp, podIp] = [`10.199.${n}.1`, `10.199.${n}.2`];
  const netns: PodNetns = {
    path: `${NETNS_DIR}/${name}`,
    podIp,
    async remove() {
      await ip("netns", "del", name).catch(() => undefined);
      const empty = existsSync(NETNS_DIR) && readdirSync(NETNS_DIR).length === 0;
      if (empty && !before.mounted && isMountPoint(NETNS_DIR)) await run("umount", [NETNS_DIR]);
      if (empty && !before.existed) rmdirSync(NETNS_DIR);
      // The kernel takes the veth out with its peer's namespace, a moment later.
      await waitFor(() => ip("link", "show", hostLink).then(() => false, () => true), { timeoutMs: 10_000, message: `veth ${hostLink} to go with namespace ${name}` }).catch(() => ip("link", "del", hostLink));
    },
  };
  try {
    await ip("netns", "add", name);
    await ip("link", "add", hostLink, "type", "veth", "peer", "name", "eth0", "netns", name);
    await ip("addr", "add", `${hostIp}/24`, "dev", hostLink);
    await ip("link", "set", hostLink, "up");
    await ip("-n", name, "addr", "add", `${podIp}/24`, "dev", "eth0");
    await ip("-n", name, "link", "set", "eth0", "up");
    await ip("-n", name, "link", "set", "lo", "up");
    await ip("-n", name, "route", "add", "default", "via", hostIp);
  } catch (error) {
    await netns.remove();
    throw error;
  }
  return netns;
}

/** What `command` prints when run in the namespace at `path`. */
export const inNetns = async (path: string, ...command: string[]): Promise<string> => (await run("nsenter", [`--net=${path}`, ...command])).stdout;

/** The links of the namespace at `path`, with their kinds and counters. */
export const linksIn = async (path: string): Promise<LinkInfo[]> => JSON.parse(await inNetns(path, "ip", "-j", "-d", "-s", "link", "show")) as LinkInfo[];
