import type { VmTlsFiles } from "../../agent-tls/issue.js";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { ProviderError, TAG } from "../types.js";
import { qemuArgs, VM_FILES, type LaunchSpec, type NicSpec } from "./args.js";
import type { PodVmImage } from "./image/load.js";
import { lastLogLine } from "./observe.js";
import type { Platform } from "./probe.js";
import { killGroup, spawnDetached } from "./process.js";
import { qmpCommand } from "./qmp.js";
import { writeRecord } from "./records.js";
import type { QemuSettings } from "./settings.js";
import type { VmRecord } from "./state.js";
import { bootOverlay } from "./userdata.js";
import { workloadScript } from "./workload.js";

/** What every launch on this host shares. */
export interface LaunchHost {
  settings: QemuSettings;
  /** The host's TSC rate (see LaunchSpec.tscKhz). */
  tscKhz: number;
  image(): Promise<PodVmImage>;
}

/** A VM's place in the provider's VPC; `attach` puts its tap on the bridge once qemu has made it. */
export type VpcNic = Extract<NicSpec, { mode: "vpc" }> & { attach(): Promise<void> };

export interface LaunchRequest {
  dir: string;
  id: string;
  sizing: Pick<VmRecord, "vcpus" | "memoryMiB">;
  userData: string;
  /** The VM's agent TLS folder (its certificate and key, the trust bundle), in the initramfs overlay only. */
  agentTls?: VmTlsFiles;
  platform: Platform;
  identity: Pick<VmRecord, "name" | "instanceType" | "tags">;
  /** User mode (the forwarded port is picked here) or the VM's place in the VPC. */
  network: { mode: "user" } | VpcNic;
  /** When set, coreutils' `timeout` kills the VM then, whatever happens to this process. */
  lifetimeMs?: number;
  /** Aborting it while qemu starts kills the VM and removes its folder. */
  signal?: AbortSignal;
}

/** Starts a VM in its folder and returns its record once qemu answers on its monitor. */
export async function launchVm(host: LaunchHost, request: LaunchRequest): Promise<VmRecord> {
  const { dir, id, sizing, userData, agentTls, platform, identity, network, lifetimeMs, signal } = request;
  const { settings } = host;
  signal?.throwIfAborted();
  const image = await host.image();
  const workload = workloadScript(userData);
  // Owner-only: the initramfs overlay carries the pod's user data and the VM's agent key.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, VM_FILES.initrd), Buffer.concat([image.initrd, bootOverlay(userData, workload, agentTls)]), { mode: 0o600 });
  for (let attempt = 1; ; attempt++) {
    const nic: NicSpec = network.mode === "vpc" ? network : { mode: "user", hostPort: await freePort(), isolate: settings.isolateNetwork };
    const launch: LaunchSpec = {
      id,
      dir,
      kernel: image.kernel,
      ...platform,
      ...sizing,
      nic,
      agentPort: settings.agentPort,
      heartbeatSeconds: settings.heartbeatSeconds,
      tscKhz: host.tscKhz,
      // A pool VM gets its workload, if any, from the pod that claims it.
      workload: workload !== undefined || identity.tags[TAG.pool] !== undefined,
    };
    const [command, args] = lifetimeMs === undefined ? [settings.binary, qemuArgs(launch)] : ["timeout", ["-k", "5", `${Math.ceil(lifetimeMs / 1000)}s`, settings.binary, ...qemuArgs(launch)]];
    const process = spawnDetached(command, args, join(dir, VM_FILES.qemuLog));
    const record: VmRecord = { id, ...identity, ...sizing, createdAt: new Date().toISOString(), pid: process.pid, ...recordedNetwork(nic, settings.agentPort), ...platform, image: image.dir };
    await writeRecord(dir, record);
    const failure = (await started(dir, process.exited, signal)) ?? (network.mode === "vpc" ? await attached(network) : undefined);
    if (!failure) return record;
    killGroup(process.pid, "SIGKILL");
    // Another process can take the forwarded port between our check and qemu's bind.
    if (/host forwarding rule/i.test(failure) && attempt < 3) continue;
    await rm(dir, { recursive: true, force: true });
    signal?.throwIfAborted();
    throw new ProviderError("retryable", `qemu did not start: ${failure}`);
  }
}

/** Undefined once qemu answers on its monitor (everything is set up), else why it did not. */
async function started(dir: string, exited: () => boolean, signal: AbortSignal | undefined, timeoutMs = 15_000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (signal?.aborted) return "cancelled";
    if (exited()) return (await lastLogLine(dir)) ?? "qemu exited";
    try {
      await qmpCommand(join(dir, VM_FILES.qmp), "query-status", 2000);
      return undefined;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  return `no answer on the QMP socket after ${timeoutMs} ms`;
}

/** What the record keeps of the VM's network: enough to reach its agent. */
function recordedNetwork(nic: NicSpec, agentPort: number): { network: "vpc"; privateIp: string; agentPort: number } | { network: "user"; hostPort: number } {
  return nic.mode === "vpc" ? { network: "vpc", privateIp: nic.address.split("/")[0]!, agentPort } : { network: "user", hostPort: nic.hostPort };
}

/** Undefined once the VM's tap is on the bridge, else why it is not. */
async function attached(nic: VpcNic): Promise<string | undefined> {
  try {
    await nic.attach();
    return undefined;
  } catch (error) {
    return `cannot put tap ${nic.tap} on the VPC bridge: ${(error as Error).message}`;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
