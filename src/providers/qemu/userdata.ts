import type { VmTlsFiles } from "../../agent-tls/issue.js";
import { gzipSync } from "node:zlib";
import { ProviderError } from "../types.js";
import { writeCpio, type CpioEntry } from "./image/cpio.js";

const MAX_USER_DATA_BYTES = 64 * 1024;

/** Refuses user data larger than a VM takes, at boot or through its agent. */
export function checkUserData(userData: string): void {
  const bytes = Buffer.byteLength(userData);
  if (bytes > MAX_USER_DATA_BYTES) throw new ProviderError("invalid", `user data is ${bytes} bytes, the qemu provider takes at most ${MAX_USER_DATA_BYTES}`);
}

/** Where the VM's agent TLS folder lands in the initramfs (guest/init.sh passes it to the agent). */
export const AGENT_TLS_DIR = "peerpods/agent-tls";

/** A gzip'd cpio appended to the image's initramfs: the kernel unpacks both, so each VM gets its own files. */
export function bootOverlay(userData: string, workload: string | undefined, agentTls?: VmTlsFiles): Buffer {
  const entries: CpioEntry[] = [{ type: "file", path: "peerpods/user-data", data: userData, mode: 0o600 }];
  if (workload !== undefined) entries.push({ type: "file", path: "peerpods/workload.sh", data: workload, mode: 0o700 });
  if (agentTls) {
    entries.push({ type: "dir", path: AGENT_TLS_DIR, mode: 0o700 });
    for (const [name, data] of Object.entries(agentTls)) entries.push({ type: "file", path: `${AGENT_TLS_DIR}/${name}`, data, mode: 0o600 });
  }
  return gzipSync(writeCpio(entries));
}
