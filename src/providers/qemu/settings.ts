import { totalmem } from "node:os";
import { z } from "zod";
import { parseProviderSettings } from "../settings.js";
import { isSubnet } from "./vpc-addressing.js";

export const qemuSettingsSchema = z.strictObject({
  /** The qemu system emulator (Debian package qemu-system-x86). */
  binary: z.string().min(1).default("qemu-system-x86_64"),
  /** Folder with the pod VM image (`npm run podvm:build`); default `${PEERPODS_CACHE_DIR:-~/.cache/peerpods}/podvm-<version>`. */
  imageDir: z.string().min(1).optional(),
  /** `auto`: KVM when a probe boot with it succeeds, else TCG. */
  accelerator: z.enum(["auto", "kvm", "tcg"]).default("auto"),
  /** `auto`: microvm when a probe boot with it succeeds, else q35. */
  machine: z.enum(["auto", "microvm", "q35"]).default("auto"),
  /** Machine-wide limits over all running VMs; beyond them `create` fails with a quota error. */
  maxVMs: z.number().int().min(0).default(16),
  /** Default: half of the host's memory. */
  maxMemoryMiB: z.number().int().min(0).optional(),
  heartbeatSeconds: z.number().int().min(1).max(3600).default(5),
  /** Port of the agent inside the VM; the host reaches it at the VM's private IP (vpc) or through a forwarded 127.0.0.1 port (user). */
  agentPort: z.number().int().min(1).max(65535).default(1024),
  /**
   * `vpc`: each VM has a tap on a bridge of the provider's own and a private IP of its subnet, which
   * the node reaches (needs root, /dev/net/tun and iproute2's `ip`); `user`: qemu's user-mode
   * network, the agent reached through a forwarded 127.0.0.1 port; `auto`: vpc where the host allows it.
   */
  network: z.enum(["auto", "vpc", "user"]).default("auto"),
  /** The VPC's /24 (`10.224.7.0/24`); default: derived from the state folder inside 10.224.0.0/12, skipping /24s the host's addresses are in. */
  vpcSubnet: z
    .string()
    .refine(isSubnet, "must be a /24 such as 10.224.7.0/24")
    .optional(),
  /** User mode: `true`, the VM reaches nothing outside itself (`restrict=on`). A VM on the VPC has no default route either way. */
  isolateNetwork: z.boolean().default(true),
  probeTimeoutSeconds: z.number().min(1).max(600).default(90),
});

export type QemuSettings = z.output<typeof qemuSettingsSchema> & { maxMemoryMiB: number };

export function parseQemuSettings(input: Record<string, unknown> | undefined): QemuSettings {
  const settings = parseProviderSettings("qemu", qemuSettingsSchema, input);
  return { ...settings, maxMemoryMiB: settings.maxMemoryMiB ?? Math.floor(totalmem() / 2 / 1024 / 1024) };
}
