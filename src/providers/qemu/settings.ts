import { totalmem } from "node:os";
import { z } from "zod";
import { parseProviderSettings } from "../settings.js";

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
  /** Port of the agent inside the VM; the host reaches it through a forwarded 127.0.0.1 port. */
  agentPort: z.number().int().min(1).max(65535).default(1024),
  /** `true`: the VM reaches nothing outside itself (qemu user networking with `restrict=on`). */
  isolateNetwork: z.boolean().default(true),
  probeTimeoutSeconds: z.number().min(1).max(600).default(90),
});

export type QemuSettings = z.output<typeof qemuSettingsSchema> & { maxMemoryMiB: number };

export function parseQemuSettings(input: Record<string, unknown> | undefined): QemuSettings {
  const settings = parseProviderSettings("qemu", qemuSettingsSchema, input);
  return { ...settings, maxMemoryMiB: settings.maxMemoryMiB ?? Math.floor(totalmem() / 2 / 1024 / 1024) };
}
