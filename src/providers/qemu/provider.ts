import { createHash, randomBytes } from "node:crypto";
import { constants, readFileSync } from "node:fs";
import { access, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { Logger } from "../../log/logger.js";
import { claimedTags } from "../claim.js";
import { ProviderError, TAG, type ClaimSpec, type Instance, type InstanceSpec, type Provider, type ProviderHealth, type Tags } from "../types.js";
import { agentSession, podDataCommands } from "./agent.js";
import { qemuArgs, tscKhzFromCpuinfo, VM_FILES, type LaunchSpec } from "./args.js";
import { writeCpio, type CpioEntry } from "./image/cpio.js";
import { defaultImageDir, readManifest } from "./image/paths.js";
import { probeCandidates, type Platform } from "./probe.js";
import { isVmProcessAlive, killGroup, spawnDetached } from "./process.js";
import { qmpCommand } from "./qmp.js";
import type { QemuSettings } from "./settings.js";
import { parseAgentStatus, parseVmRecord, toInstance, type VmRecord } from "./state.js";
import { workloadScript } from "./workload.js";

const ID_PATTERN = /^vm-[0-9a-f]{10}$/;
const MAX_USER_DATA_BYTES = 64 * 1024;
/** A folder without a record older than this is what a crash in the middle of `create` left. */
const ABANDONED_AFTER_MS = 120_000;
const PROBE_VM = { vcpus: 1, memoryMiB: 256 };
/** KVM boots in well under a second when it works; it can also hang, so it gets less time. */
const KVM_PROBE_TIMEOUT_MS = 15_000;
/** A failed probe is retried after this long: an overloaded host can time a healthy boot out. */
const PROBE_FAILURE_TTL_MS = 5 * 60_000;
/** Bytes of status.log read from each end: the ready line is first, every heartbeat repeats the rest. */
const STATUS_READ_BYTES = 4096;

export interface QemuProviderOptions {
  stateDir: string;
  log: Logger;
}

interface Image {
  kernel: string;
  initrd: Buffer;
  inputs: string;
}

interface ProbeOutcome {
  platform?: Platform;
  message: string;
  at: number;
}

interface Sizing {
  vcpus: number;
  memoryMiB: number;
}

/**
 * Local micro-VMs as a cloud. Each VM is a detached qemu process whose record, sockets and logs live
 * in `<stateDir>/qemu/<id>/`, so the inventory survives a restart of peerpods and `list` rebuilds it
 * from the folders.
 */
export class QemuProvider implements Provider {
  readonly name = "qemu";
  readonly #vmsDir: string;
  readonly #probeDir: string;
  readonly #imageDir: string;
  readonly #tscKhz: number;
  readonly #log: Logger;
  /** Creates run one at a time so that the idempotency and capacity checks see each other. */
  #createQueue: Promise<unknown> = Promise.resolve();
  #image: Promise<Image> | undefined;
  #probe: Promise<ProbeOutcome> | undefined;
  readonly #deleting = new Map<string, Promise<void>>();

  constructor(
    private readonly settings: QemuSettings,
    options: QemuProviderOptions,
  ) {
    this.#vmsDir = join(options.stateDir, "qemu");
    this.#probeDir = join(options.stateDir, "qemu-probe");
    this.#imageDir = settings.imageDir ?? defaultImageDir();
    this.#log = options.log;
    this.#tscKhz = tscKhzFromCpuinfo(readCpuinfo());
  }

  /** Which accelerator and machine VMs get; runs (once, cached on disk) the probe boot. */
  async platform(): Promise<Platform> {
    const outcome = await this.#probeOnce();
    if (!outcome.platform) throw new ProviderError("retryable", `qemu cannot boot the pod VM image on this host: ${outcome.message}`);
    return outcome.platform;
  }

  create(spec: InstanceSpec): Promise<Instance> {
    const run = this.#createQueue.then(() => this.#create(spec));
    this.#createQueue = run.catch(() => undefined);
    return run;
  }

  async #create(spec: InstanceSpec): Promise<Instance> {
    checkUserData(spec.userData);
    const platform = await this.platform();
    const records = await this.#records();
    const observed = await Promise.all(records.map(async (record) => ({ record, instance: await this.#observe(record) })));
    const live = observed.filter(({ instance }) => instance.state !== "terminated");
    const podUid = spec.tags[TAG.podUid];
    const same = live.find(({ record }) => record.name === spec.name || (podUid !== undefined && record.tags[TAG.podUid] === podUid));
    if (same) return same.instance;
    const usedMiB = live.reduce((sum, { record }) => sum + record.memoryMiB, 0);
    if (live.length + 1 > this.settings.maxVMs) throw new ProviderError("quota", `host limit of ${this.settings.maxVMs} VMs reached`);
    if (usedMiB + spec.instanceType.memoryMiB > this.settings.maxMemoryMiB) {
      throw new ProviderError("quota", `host memory limit: ${usedMiB} MiB of ${this.settings.maxMemoryMiB} MiB in use, ${spec.instanceType.name} needs ${spec.instanceType.memoryMiB} MiB`);
    }
    const id = `vm-${randomBytes(5).toString("hex")}`;
    const sizing = { vcpus: spec.instanceType.vcpus, memoryMiB: spec.instanceType.memoryMiB };
    const record = await this.#launch(join(this.#vmsDir, id), id, sizing, spec.userData, platform, { name: spec.name, instanceType: spec.instanceType.name, tags: spec.tags });
    this.#log.info({ instanceId: id, name: spec.name, pid: record.pid, accelerator: platform.accelerator, port: record.hostPort }, "qemu VM started");
    return this.#observe(record);
  }

  async get(id: string): Promise<Instance | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    const record = await this.#readRecord(join(this.#vmsDir, id));
    return record && this.#observe(record);
  }

  async list(tagFilter: Tags): Promise<Instance[]> {
    const matching = (await this.#records()).filter((record) => Object.entries(tagFilter).every(([key, value]) => record.tags[key] === value));
    return Promise.all(matching.map((record) => this.#observe(record)));
  }

  /** Concurrent deletes of one VM (pod teardown and a StopVM) share one shutdown. */
  delete(id: string): Promise<void> {
    if (!ID_PATTERN.test(id)) return Promise.resolve();
    let deleting = this.#deleting.get(id);
    if (!deleting) {
      deleting = this.#delete(id).finally(() => this.#deleting.delete(id));
      this.#deleting.set(id, deleting);
    }
    return deleting;
  }

  async #delete(id: string): Promise<void> {
    const dir = join(this.#vmsDir, id);
    const record = await this.#readRecord(dir);
    if (record) {
      await writeFile(join(dir, VM_FILES.stopping), new Date().toISOString());
      await this.#stop(record.pid, dir);
    }
    await rm(dir, { recursive: true, force: true });
    if (record) this.#log.info({ instanceId: id, name: record.name }, "qemu VM deleted");
  }

  async claim(id: string, claim: ClaimSpec): Promise<Instance> {
    checkUserData(claim.userData);
    const dir = join(this.#vmsDir, id);
    const record = ID_PATTERN.test(id) ? await this.#readRecord(dir) : undefined;
    if (!record) throw new ProviderError("notFound", `qemu VM ${id} does not exist`);
    const podUid = claim.tags[TAG.podUid];
    if (record.tags[TAG.pool] === undefined) {
      if (record.tags[TAG.podUid] === podUid) return this.#observe(record);
      throw new ProviderError("invalid", `qemu VM ${id} is not a pool VM: it belongs to pod ${record.tags[TAG.podUid] ?? "(none)"}`);
    }
    const instance = await this.#observe(record);
    if (instance.state === "terminated" || instance.state === "stopping") throw new ProviderError("notFound", `qemu VM ${id} is ${instance.state}`);
    if (!instance.ready) throw new ProviderError("retryable", `qemu VM ${id} is not ready: ${instance.message ?? instance.state}`);
    try {
      const answers = await agentSession(record.hostPort, podDataCommands(claim.userData, workloadScript(claim.userData)));
      // Only the pod that recorded this claim hands data over, so a workload already started is its own (a retry after a crash).
      const refused = answers.find((answer) => answer !== "ok" && answer !== "error: a workload was already started");
      if (refused) throw new Error(refused);
    } catch (error) {
      throw new ProviderError("retryable", `could not hand the pod's data to qemu VM ${id}: ${(error as Error).message}`, { cause: error });
    }
    const claimed: VmRecord = { ...record, name: claim.name, tags: claimedTags(record.tags, claim.tags) };
    await writeRecord(dir, claimed);
    this.#log.info({ instanceId: id, name: claimed.name, podUid }, "pool VM handed to a pod");
    return this.#observe(claimed);
  }

  /** Binary and image still there, and the probe booted; answers at once while the probe runs. */
  async health(): Promise<ProviderHealth> {
    try {
      await binaryIdentity(this.settings.binary);
      await access((await this.#loadImage()).kernel, constants.R_OK);
      const outcome = await Promise.race([this.#probeOnce(), new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]);
      if (!outcome) return { healthy: false, message: "probe boot in progress" };
      if (!outcome.platform) return { healthy: false, message: `probe boot failed: ${outcome.message}` };
      return { healthy: true, message: outcome.message };
    } catch (error) {
      return { healthy: false, message: (error as Error).message };
    }
  }

  async close(): Promise<void> {
    // Nothing to release: VMs keep running and no timers are held. A probe in flight finishes on its own.
  }

  /** Polls until the VM reports ready; throws when it ends or `timeoutMs` passes first. */
  async waitUntilReady(id: string, timeoutMs: number, intervalMs = 50): Promise<Instance> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const instance = await this.get(id);
      if (!instance || instance.state === "terminated") throw new Error(`VM ${id} ended before it was ready: ${instance?.message ?? "gone"}`);
      if (instance.ready) return instance;
      if (Date.now() > deadline) throw new Error(`VM ${id} not ready after ${timeoutMs} ms (${instance.message ?? instance.state})`);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  /** Starts a VM in `dir`; one with a `lifetimeMs` is killed by coreutils' `timeout` then, whatever happens to this process. */
  async #launch(
    dir: string,
    id: string,
    sizing: Sizing,
    userData: string,
    platform: Platform,
    identity: Pick<VmRecord, "name" | "instanceType" | "tags">,
    lifetimeMs?: number,
  ): Promise<VmRecord> {
    const image = await this.#loadImage();
    const workload = workloadScript(userData);
    // Owner-only: the initramfs overlay carries the pod's user data.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, VM_FILES.initrd), Buffer.concat([image.initrd, overlay(userData, workload)]));
    for (let attempt = 1; ; attempt++) {
      const launch: LaunchSpec = {
        id,
        dir,
        kernel: image.kernel,
        ...platform,
        ...sizing,
        hostPort: await freePort(),
        agentPort: this.settings.agentPort,
        heartbeatSeconds: this.settings.heartbeatSeconds,
        isolateNetwork: this.settings.isolateNetwork,
        tscKhz: this.#tscKhz,
        // A pool VM gets its workload, if any, from the pod that claims it.
        workload: workload !== undefined || identity.tags[TAG.pool] !== undefined,
      };
      const [command, args] = lifetimeMs === undefined ? [this.settings.binary, qemuArgs(launch)] : ["timeout", ["-k", "5", `${Math.ceil(lifetimeMs / 1000)}s`, this.settings.binary, ...qemuArgs(launch)]];
      const process = spawnDetached(command, args, join(dir, VM_FILES.qemuLog));
      const record: VmRecord = { id, ...identity, ...sizing, createdAt: new Date().toISOString(), pid: process.pid, hostPort: launch.hostPort, ...platform };
      await writeRecord(dir, record);
      const failure = await this.#started(dir, process.exited);
      if (!failure) return record;
      killGroup(process.pid, "SIGKILL");
      // Another process can take the forwarded port between our check and qemu's bind.
      if (/host forwarding rule/i.test(failure) && attempt < 3) continue;
      await rm(dir, { recursive: true, force: true });
      throw new ProviderError("retryable", `qemu did not start: ${failure}`);
    }
  }

  /** Undefined once qemu answers on its monitor (everything is set up), else why it did not. */
  async #started(dir: string, exited: () => boolean, timeoutMs = 15_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
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

  /** Asks qemu to quit, then kills its process group if it has not gone within `graceMs`. */
  async #stop(pid: number, dir: string, graceMs = 5000): Promise<void> {
    if (!(await isVmProcessAlive(pid, dir))) return;
    await qmpCommand(join(dir, VM_FILES.qmp), "quit", 2000).catch(() => killGroup(pid, "SIGTERM"));
    if (await this.#gone(pid, dir, graceMs)) return;
    killGroup(pid, "SIGKILL");
    if (!(await this.#gone(pid, dir, 5000))) throw new ProviderError("retryable", `qemu process ${pid} survived SIGKILL`);
  }

  async #gone(pid: number, dir: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!(await isVmProcessAlive(pid, dir))) return true;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return !(await isVmProcessAlive(pid, dir));
  }

  async #observe(record: VmRecord): Promise<Instance> {
    const dir = join(this.#vmsDir, record.id);
    const [alive, stopping, status] = await Promise.all([isVmProcessAlive(record.pid, dir), exists(join(dir, VM_FILES.stopping)), readEnds(join(dir, VM_FILES.status))]);
    return toInstance(record, {
      alive,
      stopping,
      status: parseAgentStatus(status.text),
      lastStatusAtMs: status.mtimeMs,
      nowMs: Date.now(),
      heartbeatSeconds: this.settings.heartbeatSeconds,
      exitReason: alive ? undefined : await lastLogLine(dir),
    });
  }

  async #readRecord(dir: string): Promise<VmRecord | undefined> {
    try {
      return parseVmRecord(await readFile(join(dir, VM_FILES.record), "utf8"));
    } catch {
      return undefined;
    }
  }

  /** Every VM record; folders a crash left without one are cleaned up once they are old enough. */
  async #records(): Promise<VmRecord[]> {
    let ids: string[];
    try {
      ids = (await readdir(this.#vmsDir)).filter((id) => ID_PATTERN.test(id));
    } catch {
      return [];
    }
    const records = await Promise.all(
      ids.map(async (id) => {
        const dir = join(this.#vmsDir, id);
        const record = await this.#readRecord(dir);
        if (!record) await this.#removeIfAbandoned(dir);
        return record;
      }),
    );
    return records.filter((record): record is VmRecord => record !== undefined);
  }

  async #removeIfAbandoned(dir: string): Promise<void> {
    try {
      if (Date.now() - (await stat(dir)).mtimeMs < ABANDONED_AFTER_MS) return;
      await rm(dir, { recursive: true, force: true });
      this.#log.warn({ dir }, "removed a qemu VM folder without a record");
    } catch {
      // gone already
    }
  }

  #loadImage(): Promise<Image> {
    this.#image ??= (async () => {
      const manifest = await readManifest(this.#imageDir);
      if (!manifest) throw new ProviderError("invalid", `no pod VM image in ${this.#imageDir}: run npm run podvm:build`);
      const kernel = join(this.#imageDir, manifest.kernel);
      await access(kernel, constants.R_OK);
      return { kernel, initrd: await readFile(join(this.#imageDir, manifest.initrd)), inputs: manifest.inputs };
    })();
    this.#image.catch(() => (this.#image = undefined));
    return this.#image;
  }

  #probeOnce(): Promise<ProbeOutcome> {
    const cached = this.#probe;
    if (cached) {
      void cached.then((outcome) => {
        if (!outcome.platform && Date.now() - outcome.at > PROBE_FAILURE_TTL_MS && this.#probe === cached) this.#probe = undefined;
      });
      return cached;
    }
    this.#probe = this.#runProbe().catch((error: unknown) => ({ message: (error as Error).message, at: Date.now() }));
    return this.#probe;
  }

  /**
   * Boots a small VM with each candidate platform until one reports ready. The winner is remembered
   * next to the image for this qemu binary, settings and host boot, so other state folders and
   * restarts skip the probe (a KVM that hangs costs its whole timeout).
   */
  async #runProbe(): Promise<ProbeOutcome> {
    const image = await this.#loadImage();
    const binary = await binaryIdentity(this.settings.binary);
    const hostBoot = (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "")).trim();
    const key = JSON.stringify({ binary, hostBoot, image: image.inputs, accelerator: this.settings.accelerator, machine: this.settings.machine });
    const resultFile = join(this.#imageDir, `probe-${createHash("sha256").update(key).digest("hex").slice(0, 16)}.json`);
    const saved = await readFile(resultFile, "utf8").then((text) => JSON.parse(text) as { key?: string; platform?: Platform; message?: string }, () => undefined);
    if (saved?.key === key && saved.platform) return { platform: saved.platform, message: saved.message ?? "", at: Date.now() };
    const failures: string[] = [];
    for (const platform of probeCandidates(this.settings, await kvmUsable())) {
      const started = Date.now();
      try {
        const bootMs = await this.#probeBoot(platform);
        const message = `${platform.accelerator}/${platform.machine}: probe VM ready in ${Date.now() - started} ms (guest boot ${bootMs} ms)`;
        // A read-only image folder only means the next provider probes again.
        await writeFile(resultFile, `${JSON.stringify({ key, platform, message, failures }, null, 2)}\n`).catch(() => undefined);
        this.#log.info({ ...platform, failures }, "qemu probe boot succeeded");
        return { platform, message, at: Date.now() };
      } catch (error) {
        failures.push(`${platform.accelerator}/${platform.machine}: ${(error as Error).message}`);
        this.#log.warn({ ...platform, reason: (error as Error).message }, "qemu probe boot failed");
      }
    }
    return { message: failures.join("; ") || "no accelerator to try", at: Date.now() };
  }

  async #probeBoot(platform: Platform): Promise<number> {
    const id = `probe-${platform.accelerator}-${platform.machine}`;
    const dir = join(this.#probeDir, id);
    // A probe VM of a run killed mid-probe dies at the end of its lifetime; this ends it sooner.
    const leftover = await this.#readRecord(dir);
    if (leftover) await this.#stop(leftover.pid, dir, 0).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    const timeoutMs = platform.accelerator === "kvm" ? Math.min(KVM_PROBE_TIMEOUT_MS, this.settings.probeTimeoutSeconds * 1000) : this.settings.probeTimeoutSeconds * 1000;
    // A probe VM must not outlive its probe, even when peerpods is killed in the middle of it.
    const record = await this.#launch(dir, id, PROBE_VM, "", platform, { name: id, instanceType: "probe", tags: {} }, timeoutMs + 5000);
    try {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const { bootMs } = parseAgentStatus((await readEnds(join(dir, VM_FILES.status))).text);
        if (bootMs !== undefined) return bootMs;
        if (!(await isVmProcessAlive(record.pid, dir))) throw new Error(`qemu exited: ${(await lastLogLine(dir)) ?? "no message"}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`no ready report within ${timeoutMs} ms`);
    } finally {
      await this.#stop(record.pid, dir, 1000).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }
}

function checkUserData(userData: string): void {
  const bytes = Buffer.byteLength(userData);
  if (bytes > MAX_USER_DATA_BYTES) throw new ProviderError("invalid", `user data is ${bytes} bytes, the qemu provider takes at most ${MAX_USER_DATA_BYTES}`);
}

/** Replaces a VM's record in one step, so a crash leaves the old or the new one, never half of either. */
async function writeRecord(dir: string, record: VmRecord): Promise<void> {
  const file = join(dir, VM_FILES.record);
  const temp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`);
  await rename(temp, file);
}

/** A gzip'd cpio appended to the image's initramfs: the kernel unpacks both, so each VM gets its own files. */
function overlay(userData: string, workload: string | undefined): Buffer {
  const entries: CpioEntry[] = [{ type: "file", path: "peerpods/user-data", data: userData, mode: 0o600 }];
  if (workload !== undefined) entries.push({ type: "file", path: "peerpods/workload.sh", data: workload, mode: 0o700 });
  return gzipSync(writeCpio(entries));
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

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The first and last few KiB of a file and its modification time; empty when it does not exist. */
async function readEnds(path: string): Promise<{ text: string; mtimeMs?: number }> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch {
    return { text: "" };
  }
  try {
    const { size, mtimeMs } = await handle.stat();
    if (size <= 2 * STATUS_READ_BYTES) return { text: (await handle.readFile()).toString("utf8"), mtimeMs };
    const head = Buffer.alloc(STATUS_READ_BYTES);
    const tail = Buffer.alloc(STATUS_READ_BYTES);
    await handle.read(head, 0, STATUS_READ_BYTES, 0);
    await handle.read(tail, 0, STATUS_READ_BYTES, size - STATUS_READ_BYTES);
    return { text: `${head.toString("utf8")}\n${tail.toString("utf8")}`, mtimeMs };
  } finally {
    await handle.close();
  }
}

async function lastLogLine(dir: string): Promise<string | undefined> {
  const text = await readFile(join(dir, VM_FILES.qemuLog), "utf8").catch(() => "");
  return text.trim().split("\n").filter(Boolean).pop()?.slice(0, 500);
}

async function kvmUsable(): Promise<boolean> {
  return access("/dev/kvm", constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
}

/** Path, size and mtime of the qemu binary found on PATH: a different qemu gets a fresh probe. */
async function binaryIdentity(binary: string): Promise<string> {
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

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}
