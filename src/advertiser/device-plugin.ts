import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "../log/logger.js";

/** The kubelet device-plugin API version this plugin speaks. */
export const API_VERSION = "v1beta1";
/** The kubelet's registration socket inside the device-plugin folder. */
export const KUBELET_SOCKET = "kubelet.sock";
export const DEFAULT_DEVICE_PLUGIN_DIR = "/var/lib/kubelet/device-plugins";
/** Set in every container that gets VM slots: the slot ids, comma-separated. */
export const SLOT_ENV = "PEERPODS_VM_SLOTS";
export const SLOT_ANNOTATION = "peerpods.io/vm-slots";

export interface Device {
  ID: string;
  health: "Healthy" | "Unhealthy";
}

export interface DevicePluginApi {
  DevicePlugin: grpc.ServiceClientConstructor;
  Registration: grpc.ServiceClientConstructor;
}

/** The v1beta1 services, loaded from the upstream proto with its field names kept as written. */
export function loadDevicePluginApi(): DevicePluginApi {
  const definition = loadSync(fileURLToPath(new URL("./proto/api.proto", import.meta.url)), { keepCase: true, defaults: true, longs: String, enums: String });
  return (grpc.loadPackageDefinition(definition) as unknown as { v1beta1: DevicePluginApi }).v1beta1;
}

/** One device per VM slot; all of them unhealthy while peer pods cannot get VMs. */
export function deviceList(slots: number, healthy: boolean): Device[] {
  const health = healthy ? "Healthy" : "Unhealthy";
  return Array.from({ length: slots }, (_, i) => ({ ID: `vm-${i}`, health }));
}

/** `kata.peerpods.io/vm` → `peerpods-kata.peerpods.io_vm.sock`: one socket per resource name. */
export const socketName = (resourceName: string): string => `peerpods-${resourceName.replace(/[^A-Za-z0-9.-]/g, "_")}.sock`;

export interface DevicePluginOptions {
  /** The kubelet's device-plugin folder. */
  dir: string;
  resourceName(): string;
  devices(): Device[];
  log: Logger;
  /** How often the kubelet socket is checked for a kubelet restart. */
  watchIntervalMs?: number;
}

interface AllocateRequest {
  container_requests: { devices_ids: string[] }[];
}

/**
 * A kubelet device plugin for the VM-slot resource: serves the DevicePlugin service on its own
 * unix socket, registers with the kubelet, streams the device list on every change, and serves
 * again and re-registers whenever the kubelet restarts (a new kubelet.sock, or its own socket
 * removed) or the resource name changes.
 */
export class DevicePlugin {
  readonly #api = loadDevicePluginApi();
  readonly #streams = new Set<grpc.ServerWritableStream<unknown, { devices: Device[] }>>();
  #serving: { server: grpc.Server; path: string } | undefined;
  #registered: { resourceName: string; kubeletIno: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;

  constructor(private readonly options: DevicePluginOptions) {}

  /** Serves and registers when the kubelet is there; keeps trying in the background when it is not. */
  async start(): Promise<void> {
    await this.check();
    this.#timer = setInterval(() => void this.check(), this.options.watchIntervalMs ?? 1000);
  }

  /** Sends the current device list to every ListAndWatch stream. */
  update(): void {
    const devices = this.options.devices();
    for (const stream of this.#streams) stream.write({ devices });
  }

  /** Serves and registers again if the kubelet restarted, the socket went away, or the resource was renamed. */
  check(): Promise<void> {
    this.#checking ??= this.#reconcile().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#checking;
    await this.#shutdown();
  }

  async #reconcile(): Promise<void> {
    const { dir, log } = this.options;
    const resourceName = this.options.resourceName();
    const kubeletIno = await inode(join(dir, KUBELET_SOCKET));
    if (kubeletIno === undefined) return;
    const ownSocket = await inode(join(dir, socketName(resourceName)));
    const current = this.#registered;
    if (current && current.kubeletIno === kubeletIno && current.resourceName === resourceName && ownSocket !== undefined) return;
    try {
      await this.#shutdown();
      await this.#serve(resourceName);
      await this.#register(resourceName);
      this.#registered = { resourceName, kubeletIno };
      log.info({ resourceName, endpoint: socketName(resourceName), devices: this.options.devices().length }, "registered with the kubelet");
    } catch (error) {
      log.warn({ err: error, resourceName }, "device plugin registration failed; retrying");
    }
  }

  async #serve(resourceName: string): Promise<void> {
    const path = join(this.options.dir, socketName(resourceName));
    await rm(path, { force: true });
    const server = new grpc.Server();
    server.addService(this.#api.DevicePlugin.service, {
      GetDevicePluginOptions: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback(null, { pre_start_required: false, get_preferred_allocation_available: false }),
      ListAndWatch: (stream: grpc.ServerWritableStream<unknown, { devices: Device[] }>) => {
        this.#streams.add(stream);
        const forget = (): boolean => this.#streams.delete(stream);
        stream.on("cancelled", forget);
        stream.on("close", forget);
        stream.write({ devices: this.options.devices() });
      },
      Allocate: (call: grpc.ServerUnaryCall<AllocateRequest, object>, callback: grpc.sendUnaryData<object>) => {
        const container_responses = call.request.container_requests.map(({ devices_ids }) => {
          const slots = devices_ids.join(",");
          return { envs: { [SLOT_ENV]: slots }, annotations: { [SLOT_ANNOTATION]: slots } };
        });
        callback(null, { container_responses });
      },
      GetPreferredAllocation: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback({ code: grpc.status.UNIMPLEMENTED, details: "no preferred allocation" }),
      PreStartContainer: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback(null, {}),
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
    );
    this.#serving = { server, path };
  }

  async #register(resourceName: string): Promise<void> {
    const client = new this.#api.Registration(`unix://${join(this.options.dir, KUBELET_SOCKET)}`, grpc.credentials.createInsecure());
    try {
      await new Promise<void>((resolve, reject) =>
        (client as unknown as { Register: (req: object, options: grpc.CallOptions, cb: (error: Error | null) => void) => void }).Register(
          { version: API_VERSION, endpoint: socketName(resourceName), resource_name: resourceName, options: { pre_start_required: false, get_preferred_allocation_available: false } },
          { deadline: Date.now() + 5000 },
          (error) => (error ? reject(error) : resolve()),
        ),
      );
    } finally {
      client.close();
    }
  }

  async #shutdown(): Promise<void> {
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
    const serving = this.#serving;
    this.#serving = undefined;
    this.#registered = undefined;
    if (!serving) return;
    serving.server.forceShutdown();
    await rm(serving.path, { force: true });
  }
}

async function inode(path: string): Promise<number | undefined> {
  return stat(path).then(
    (s) => s.ino,
    () => undefined,
  );
}
