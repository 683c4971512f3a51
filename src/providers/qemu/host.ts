import { constants, readFileSync } from "node:fs";
import { access, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ProviderError } from "../types.js";

/** Path, size and mtime of the qemu binary found on PATH: a different qemu gets a fresh probe. */
export async function binaryIdentity(binary: string): Promise<string> {
  const candidates = binary.includes("/") ? [binary] : (process.env.PATH ?? "").split(":").filter(Boolean).map((dir) => join(dir, binary));
  for (const path of candidates) {
    try {
      await access(path, constants.X_OK);
      const { size, mtimeMs } = await stat(path);
      return `${path}:${size}:${mtimeMs}`;
    } catch {
      // not here
    }
  }
  throw new ProviderError("invalid", `qemu binary "${binary}" not found (install the Debian package qemu-system-x86)`);
}

export async function kvmUsable(): Promise<boolean> {
  return access("/dev/kvm", constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
}

/** This boot of the host: a reboot can change what KVM does, so it gets a fresh probe. */
export async function hostBootId(): Promise<string> {
  return (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "")).trim();
}

export function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}
