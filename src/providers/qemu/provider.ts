import type { AgentTls } from "../../agent-tls/store.js";
import { constants } from "node:fs";
import { access, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Logger } from "../../log/logger.js";
import { eitherSignal, untilAborted } from "../cancel.js";
import { claimCheck, claimedTags } from "../claim.js";
import { ProviderError, TAG, type CallOptions, type ClaimSpec, type Instance, type InstanceSpec, type Provider, type ProviderHealth, type ProviderOptions, type Tags } from "../types.js";
import { handOverPodData } from "./agent.js";
import { tscKhzFromCpuinfo, VM_FILES } from "./args.js";
import { checkRoom, sameVm } from "./capacity.js";
import { binaryIdentity, readCpuinfo } from "./host.js";
import { ImageLoader } from "./image/load.js";
import { defaultImageDir } from "./image/paths.js";
import { launchVm, type LaunchHost, type LaunchRequest } from "./launch.js";
import { chooseNetwork, vpcSupport, type NetworkChoice } from "./network-mode.js";
import { observeVm } from "./observe.js";
import { PlatformProbe } from "./platform.js";
import type { Platform } from "./probe.js";
import { stopVm } from "./process.js";
import { isVmId, listRecords, newVmId, readRecord, writeRecord } from "./records.js";
import type { QemuSettings } from "./settings.js";
import { agentEndpoint, type VmRecord } from "./state.js";
import { checkUserData } from "./userdata.js";
import { LocalVpc } from "./vpc.js";
import { allocateIp, formatSubnet, macAddress, parseSubnet, SUBNET_PREFIX, tapName, VPC_MTU } from "./vpc-addressing.js";

/**
 * Local micro-VMs as a cloud. Each VM is a detached qemu process whose record, sockets and logs live
 * in `<stateDir>/qemu/<id>/`, so the inventory survives a restart of peerpods and `list` rebuilds it
 * from the folders.
 */
export class QemuProvider implements Provider {
  readonly name = "qemu";
  readonly #vmsDir: string;
  readonly #log: Logger;
  readonly #agentTls: AgentTls | undefined;
  readonly #image: ImageLoader;
  readonly #host: LaunchHost;
  readonly #probe: PlatformProbe;
  readonly #vpc: LocalVpc;
  /** How VMs are networked here, decided on first use. */
  #network: Promise<NetworkChoice> | undefined;
  /** Creates run one at a time so that the idempotency and capacity checks see each other. */
  #createQueue: Promise<unknown> = Promise.resolve();
  readonly #deleting = new Map<string, Promise<void>>();
  /** Aborted by close: the probe boot and the creates under way stop, their VMs with them. */
  readonly #closing = new AbortController();

  constructor(
    private readonly settings: QemuSettings,
    options: Pick<ProviderOptions, "stateDir" | "log" | "agentTls">,
  ) {
    this.#vmsDir = join(options.stateDir, "qemu");
    this.#log = options.log;
    this.#agentTls = options.agentTls;
    this.#image = new ImageLoader(settings.imageDir ?? defaultImageDir());
    this.#host = { settings, tscKhz: tscKhzFromCpuinfo(readCpuinfo()), image: () => this.#image.load() };
    this.#probe = new PlatformProbe({ ...this.#host, imageDir: this.#image.imageDir }, join(options.stateDir, "qemu-probe"), this.#log, this.#closing.signal);
    this.#vpc = new LocalVpc(resolve(options.stateDir), settings.vpcSubnet === undefined ? undefined : parseSubnet(settings.vpcSubnet));
  }

  /** Which accelerator and machine VMs get; runs (once, cached on disk) the probe boot. */
  platform(): Promise<Platform> {
    return this.#probe.platform();
  }

  /** A cancelled create stops waiting for its turn or the probe at once, and kills a VM it was starting. */
  create(spec: InstanceSpec, options?: CallOptions): Promise<Instance> {
    const signal = eitherSignal(this.#closing.signal, options?.signal);
    const run = this.#createQueue.then(() => this.#create(spec, signal));
    this.#createQueue = run.catch(() => undefined);
    return untilAborted(run, signal);
  }

  async #create(spec: InstanceSpec, signal: AbortSignal): Promise<Instance> {
    signal.throwIfAborted();
    checkUserData(spec.userData);
    const platform = await untilAborted(this.platform(), signal);
    const live = await this.#liveVms();
    const same = sameVm(live, spec);
    if (same) return same.instance;
    checkRoom(live.map(({ record }) => record), spec, this.settings);
    const id = newVmId();
    const sizing = { vcpus: spec.instanceType.vcpus, memoryMiB: spec.instanceType.memoryMiB };
    const identity = { name: spec.name, instanceType: spec.instanceType.name, tags: spec.tags };
    const agentTls = spec.agentTls ? { agentTls: spec.agentTls } : {};
    const network = await this.#vmNetwork(id, live.map(({ record }) => record));
    const record = await launchVm(this.#host, { dir: join(this.#vmsDir, id), id, sizing, userData: spec.userData, ...agentTls, platform, identity, network, signal });
    this.#log.info({ instanceId: id, name: spec.name, pid: record.pid, accelerator: platform.accelerator, network: record.network, agentEndpoint: agentEndpoint(record) }, "qemu VM started");
    return this.#observe(record);
  }

  /** The VMs whose qemu runs (or has not been seen to end), with what was observed of them. */
  async #liveVms(): Promise<{ record: VmRecord; instance: Instance }[]> {
    const records = await listRecords(this.#vmsDir, this.#log);
    const observed = await Promise.all(records.map(async (record) => ({ record, instance: await this.#observe(record) })));
    return observed.filter(({ instance }) => instance.state !== "terminated");
  }

  /** How VMs are networked on this host; logged once, when first decided. */
  #networkChoice(): Promise<NetworkChoice> {
    this.#network ??= vpcSupport().then((support) => {
      const choice = chooseNetwork(this.settings.network, support);
      const where = choice.mode === "vpc" ? { bridge: this.#vpc.bridge } : {};
      this.#log.info({ network: choice.mode, reason: choice.reason, ...where }, `qemu VMs get the ${choice.mode === "vpc" ? "VPC" : "user-mode"} network`);
      return choice;
    });
    return this.#network;
  }

  /**
   * A new VM's network: user mode, or the lowest address of the VPC no live VM has (the bridge made
   * first when there is none). Runs in the create queue, so two creates never take one address.
   */
  async #vmNetwork(id: string, live: VmRecord[]): Promise<LaunchRequest["network"]> {
    if ((await this.#networkChoice()).mode === "user") return { mode: "user" };
    const { subnet, created } = await this.#vpc.ensure();
    if (created) this.#log.info({ bridge: this.#vpc.bridge, subnet: formatSubnet(subnet), mtu: VPC_MTU }, "qemu VPC bridge created");
    const taken = live.flatMap((record) => (record.network === "vpc" ? [record.privateIp] : []));
    const tap = tapName(id);
    return { mode: "vpc", tap, address: `${allocateIp(subnet, taken)}/${SUBNET_PREFIX}`, mac: macAddress(id), mtu: VPC_MTU, attach: () => this.#vpc.attach(tap) };
  }

  async get(id: string): Promise<Instance | undefined> {
    if (!isVmId(id)) return undefined;
    const record = await readRecord(join(this.#vmsDir, id));
    return record && this.#observe(record);
  }

  async list(tagFilter: Tags): Promise<Instance[]> {
    const records = await listRecords(this.#vmsDir, this.#log);
    const matching = records.filter((record) => Object.entries(tagFilter).every(([key, value]) => record.tags[key] === value));
    return Promise.all(matching.map((record) => this.#observe(record)));
  }

  /**
   * Concurrent deletes of one VM (pod teardown and a StopVM) share one shutdown. A cancelled call
   * starts none; one begun runs to its end (seconds at most), so no VM is left half stopped.
   */
  delete(id: string, options?: CallOptions): Promise<void> {
    if (!isVmId(id)) return Promise.resolve();
    let deleting = this.#deleting.get(id);
    if (!deleting) {
      if (options?.signal?.aborted) return Promise.reject(options.signal.reason);
      deleting = this.#delete(id).finally(() => this.#deleting.delete(id));
      this.#deleting.set(id, deleting);
    }
    return deleting;
  }

  async #delete(id: string): Promise<void> {
    const dir = join(this.#vmsDir, id);
    const record = await readRecord(dir);
    if (record) {
      await writeFile(join(dir, VM_FILES.stopping), new Date().toISOString());
      await stopVm(record.pid, dir);
    }
    await rm(dir, { recursive: true, force: true });
    if (record) this.#log.info({ instanceId: id, name: record.name }, "qemu VM deleted");
  }

  async claim(id: string, claim: ClaimSpec, options?: CallOptions): Promise<Instance> {
    options?.signal?.throwIfAborted();
    checkUserData(claim.userData);
    const dir = join(this.#vmsDir, id);
    const record = isVmId(id) ? await readRecord(dir) : undefined;
    const { instance, owned } = claimCheck(id, record && (await this.#observe(record)), claim);
    if (owned || !record) return instance; // claimCheck throws for a VM without a record
    // The pod's data goes through the VM's agent, so the VM must have booted.
    if (!instance.ready) throw new ProviderError("retryable", `qemu VM ${id} is not ready: ${instance.message ?? instance.state}`);
    await handOverPodData({ id, endpoint: agentEndpoint(record), tags: record.tags }, claim.userData, this.#agentTls);
    const claimed: VmRecord = { ...record, name: claim.name, tags: claimedTags(record.tags, claim.tags) };
    await writeRecord(dir, claimed);
    this.#log.info({ instanceId: id, name: claimed.name, podUid: claim.tags[TAG.podUid] }, "pool VM handed to a pod");
    return this.#observe(claimed);
  }

  /** Binary and image still there, and the probe booted; answers at once while the probe runs. Names the network VMs get. */
  async health(): Promise<ProviderHealth> {
    try {
      const network = await this.#networkChoice();
      const networkNote = network.mode === "vpc" ? `network: vpc (bridge ${this.#vpc.bridge})` : `network: user-mode (${network.reason})`;
      await binaryIdentity(this.settings.binary);
      await access((await this.#image.load()).kernel, constants.R_OK);
      const outcome = await Promise.race([this.#probe.outcome(), new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]);
      if (!outcome) return { healthy: false, message: "probe boot in progress" };
      if (!outcome.platform) return { healthy: false, message: `probe boot failed: ${outcome.message}` };
      return { healthy: true, message: `${outcome.message}; ${networkNote}` };
    } catch (error) {
      return { healthy: false, message: (error as Error).message };
    }
  }

  /**
   * VMs keep running; a probe boot or a create under way is stopped, and waited for. The VPC
   * bridge goes when no VM on it is left (VMs outlive the provider, their bridge with them).
   */
  async close(): Promise<void> {
    this.#closing.abort(new Error("qemu provider closed"));
    await Promise.all([this.#probe.settled(), this.#createQueue]);
    await this.#removeIdleBridge();
  }

  async #removeIdleBridge(): Promise<void> {
    try {
      if ((await this.#networkChoice()).mode !== "vpc") return;
      if ((await this.#liveVms()).some(({ record }) => record.network === "vpc")) return;
      if (await this.#vpc.remove()) this.#log.info({ bridge: this.#vpc.bridge }, "qemu VPC bridge removed: no VM left on it");
    } catch (error) {
      this.#log.warn({ bridge: this.#vpc.bridge, reason: (error as Error).message }, "could not remove the qemu VPC bridge");
    }
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

  #observe(record: VmRecord): Promise<Instance> {
    return observeVm(join(this.#vmsDir, record.id), record, this.settings.heartbeatSeconds);
  }
}
