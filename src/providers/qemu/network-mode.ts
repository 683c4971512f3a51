import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { ProviderError } from "../types.js";

/** `vpc`: a tap on the provider's bridge with a private IP; `user`: qemu's user-mode network with a forwarded port. */
export type NetworkMode = "vpc" | "user";
export type NetworkSetting = NetworkMode | "auto";

/** What the VPC needs of the host: root (bridges, taps), /dev/net/tun (qemu's tap), iproute2's `ip`. */
export interface VpcSupport {
  root: boolean;
  tun: boolean;
  ip: boolean;
}

export interface NetworkChoice {
  mode: NetworkMode;
  /** Why, for logs and health. */
  reason: string;
}

/** The mode the setting asks for on a host with `support`; `vpc` on a host without it is an error. */
export function chooseNetwork(setting: NetworkSetting, support: VpcSupport): NetworkChoice {
  if (setting === "user") return { mode: "user", reason: "set in the settings" };
  const missing = [!support.root && "not running as root", !support.tun && "no usable /dev/net/tun", !support.ip && "no `ip` command (iproute2)"].filter((item): item is string => Boolean(item));
  if (missing.length === 0) return { mode: "vpc", reason: setting === "vpc" ? "set in the settings" : "auto: root, /dev/net/tun and ip are there" };
  if (setting === "vpc") throw new ProviderError("invalid", `the qemu provider's network "vpc" cannot work here: ${missing.join(", ")}`);
  return { mode: "user", reason: `auto: ${missing.join(", ")}` };
}

/** What this host offers the VPC. */
export async function vpcSupport(): Promise<VpcSupport> {
  const usable = (path: string, mode: number): Promise<boolean> =>
    access(path, mode).then(
      () => true,
      () => false,
    );
  const ipOnPath = async (): Promise<boolean> => {
    for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) if (await usable(join(dir, "ip"), constants.X_OK)) return true;
    return false;
  };
  const [tun, ip] = await Promise.all([usable("/dev/net/tun", constants.R_OK | constants.W_OK), ipOnPath()]);
  return { root: process.getuid?.() === 0, tun, ip };
}
