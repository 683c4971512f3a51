import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ProviderError } from "../types.js";

const run = promisify(execFile);

/** Arguments of the iproute2 `ip` calls the qemu VPC makes. */
export const ipArgs = {
  /** Every interface with its addresses and bridge, as JSON. */
  interfaces: (): string[] => ["-j", "addr", "show"],
  /** Every bridge with its label, as JSON. */
  bridges: (): string[] => ["-j", "link", "show", "type", "bridge"],
  addBridge: (name: string, mtu: number): string[] => ["link", "add", "name", name, "mtu", String(mtu), "type", "bridge"],
  /** Sets the interface's alias: `ip link` shows it, so a person (or a test's cleanup) sees whose it is. */
  label: (device: string, text: string): string[] => ["link", "set", "dev", device, "alias", text],
  addAddress: (device: string, cidr: string): string[] => ["addr", "add", cidr, "dev", device],
  /** Brings `device` up with the MAC `address`, which then stays whatever ports join it. */
  up: (device: string, address: string): string[] => ["link", "set", "dev", device, "address", address, "up"],
  /** Puts `device` on `bridge` with the bridge's MTU and brings it up, in one call. */
  attach: (device: string, bridge: string, mtu: number): string[] => ["link", "set", "dev", device, "mtu", String(mtu), "master", bridge, "up"],
  remove: (device: string): string[] => ["link", "del", "dev", device],
};

export interface HostInterface {
  name: string;
  mtu: number;
  /** The bridge it is a port of. */
  master?: string;
  /** Its IPv4 addresses as `a.b.c.d/prefix`. */
  ipv4: string[];
}

/** The interfaces in the JSON of `ip -j addr show`. */
export function parseInterfaces(json: string): HostInterface[] {
  const entries = JSON.parse(json) as { ifname: string; mtu: number; master?: string; addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  return entries.map((entry) => ({
    name: entry.ifname,
    mtu: entry.mtu,
    ...(entry.master !== undefined && { master: entry.master }),
    ipv4: (entry.addr_info ?? []).filter((address) => address.family === "inet").map((address) => `${address.local}/${address.prefixlen}`),
  }));
}

/** The bridges in the JSON of `ip -j link show type bridge`, with their labels (aliases). */
export function parseBridges(json: string): { name: string; label?: string }[] {
  const entries = JSON.parse(json) as { ifname: string; ifalias?: string }[];
  return entries.map((entry) => ({ name: entry.ifname, ...(entry.ifalias !== undefined && { label: entry.ifalias }) }));
}

export type IpRunner = (args: string[]) => Promise<string>;

/** Runs `ip` with `args`; a failure becomes a ProviderError naming the call and what `ip` said. */
export const runIp: IpRunner = async (args) => {
  try {
    return (await run("ip", args, { encoding: "utf8" })).stdout;
  } catch (error) {
    const { code, stderr } = error as { code?: unknown; stderr?: string };
    if (code === "ENOENT") throw new ProviderError("invalid", "the qemu VPC needs the `ip` command (Debian package iproute2)", { cause: error });
    throw new ProviderError("retryable", `ip ${args.join(" ")} failed: ${stderr?.trim() || (error as Error).message}`, { cause: error });
  }
};

/** The host's interfaces now. */
export async function hostInterfaces(runner: IpRunner = runIp): Promise<HostInterface[]> {
  return parseInterfaces(await runner(ipArgs.interfaces()));
}
