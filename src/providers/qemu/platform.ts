import { createHash } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../log/logger.js";
import { ProviderError } from "../types.js";
import { binaryIdentity, hostBootId, kvmUsable } from "./host.js";
import { launchVm, type LaunchHost } from "./launch.js";
import { agentStatus, lastLogLine } from "./observe.js";
import { probeCandidates, type Platform } from "./probe.js";
import { isVmProcessAlive, stopVm } from "./process.js";
import { readRecord } from "./records.js";

const PROBE_VM = { vcpus: 1, memoryMiB: 256 };
/** KVM boots in well under a second when it works; it can also hang, so it gets less time. */
const KVM_PROBE_TIMEOUT_MS = 15_000;
/** A failed probe is retried after this long: an overloaded host can time a healthy boot out. */
const PROBE_FAILURE_TTL_MS = 5 * 60_000;

export interface ProbeOutcome {
  platform?: Platform;
  message: string;
  at: number;
}

/**
 * Finds, by booting a small VM, which accelerator and machine work on this host. The answer is
 * kept for the life of the provider; a failure only for PROBE_FAILURE_TTL_MS.
 */
export class PlatformProbe {
  #probe: Promise<ProbeOutcome> | undefined;

  /** `signal` (the provider closing) stops a probe boot under way, its VM included. */
  constructor(
    private readonly host: LaunchHost & { imageDir: string },
    private readonly probeDir: string,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {}

  /** The platform VMs get; throws a retryable error while no candidate has booted. */
  async platform(): Promise<Platform> {
    const outcome = await this.outcome();
    if (!outcome.platform) throw new ProviderError("retryable", `qemu cannot boot the pod VM image on this host: ${outcome.message}`);
    return outcome.platform;
  }

  /** The probe's outcome, running it on first use and again once a failure is old enough. */
  outcome(): Promise<ProbeOutcome> {
    const cached = this.#probe;
    if (cached) {
      void cached.then((outcome) => {
        if (!outcome.platform && Date.now() - outcome.at > PROBE_FAILURE_TTL_MS && this.#probe === cached) this.#probe = undefined;
      });
      return cached;
    }
    this.#probe = this.#run().catch((error: unknown) => ({ message: (error as Error).message, at: Date.now() }));
    return this.#probe;
  }

  /** Resolves once no probe boot runs (its VM stopped). */
  async settled(): Promise<void> {
    await this.#probe;
  }

  /**
   * Boots a small VM with each candidate platform until one reports ready. The winner is remembered
   * next to the image for this qemu binary, settings and host boot, so other state folders and
   * restarts skip the probe (a KVM that hangs costs its whole timeout).
   */
  async #run(): Promise<ProbeOutcome> {
    const { settings, imageDir } = this.host;
    const image = await this.host.image();
    const binary = await binaryIdentity(settings.binary);
    const key = JSON.stringify({ binary, hostBoot: await hostBootId(), image: image.inputs, accelerator: settings.accelerator, machine: settings.machine });
    const resultFile = join(imageDir, `probe-${createHash("sha256").update(key).digest("hex").slice(0, 16)}.json`);
    const saved = await readFile(resultFile, "utf8").then((text) => JSON.parse(text) as { key?: string; platform?: Platform; message?: string }, () => undefined);
    if (saved?.key === key && saved.platform) return { platform: saved.platform, message: saved.message ?? "", at: Date.now() };
    const failures: string[] = [];
    for (const platform of probeCandidates(settings, await kvmUsable())) {
      this.signal.throwIfAborted();
      const started = Date.now();
      try {
        const bootMs = await this.#boot(platform);
        const message = `${platform.accelerator}/${platform.machine}: probe VM ready in ${Date.now() - started} ms (guest boot ${bootMs} ms)`;
        // A read-only image folder only means the next provider probes again.
        await writeFile(resultFile, `${JSON.stringify({ key, platform, message, failures }, null, 2)}\n`).catch(() => undefined);
        this.log.info({ ...platform, failures }, "qemu probe boot succeeded");
        return { platform, message, at: Date.now() };
      } catch (error) {
        this.signal.throwIfAborted();
        failures.push(`${platform.accelerator}/${platform.machine}: ${(error as Error).message}`);
        this.log.warn({ ...platform, reason: (error as Error).message }, "qemu probe boot failed");
      }
    }
    return { message: failures.join("; ") || "no accelerator to try", at: Date.now() };
  }

  /** Boots one probe VM with `platform`; resolves with the guest's boot time once its agent reports ready. */
  async #boot(platform: Platform): Promise<number> {
    const id = `probe-${platform.accelerator}-${platform.machine}`;
    const dir = join(this.probeDir, id);
    // A probe VM of a run killed mid-probe dies at the end of its lifetime; this ends it sooner.
    const leftover = await readRecord(dir);
    if (leftover) await stopVm(leftover.pid, dir, 0).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    const probeTimeoutMs = this.host.settings.probeTimeoutSeconds * 1000;
    const timeoutMs = platform.accelerator === "kvm" ? Math.min(KVM_PROBE_TIMEOUT_MS, probeTimeoutMs) : probeTimeoutMs;
    // A probe VM must not outlive its probe, even when peerpods is killed in the middle of it.
    const identity = { name: id, instanceType: "probe", tags: {} };
    // The probe tries accelerators and machines only; user mode needs no bridge.
    const record = await launchVm(this.host, { dir, id, sizing: PROBE_VM, userData: "", platform, identity, network: { mode: "user" }, lifetimeMs: timeoutMs + 5000, signal: this.signal });
    try {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        this.signal.throwIfAborted();
        const { bootMs } = await agentStatus(dir);
        if (bootMs !== undefined) return bootMs;
        if (!(await isVmProcessAlive(record.pid, dir))) throw new Error(`qemu exited: ${(await lastLogLine(dir)) ?? "no message"}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`no ready report within ${timeoutMs} ms`);
    } finally {
      await stopVm(record.pid, dir, 1000).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }
}
