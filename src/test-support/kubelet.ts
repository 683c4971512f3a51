import * as grpc from "@grpc/grpc-js";
import { join } from "node:path";
import { KUBELET_SOCKET, loadDevicePluginApi, type Device } from "../advertiser/device-plugin.js";

/** Items pushed by callbacks, taken in order by a test. */
export class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  next(timeoutMs = 5000): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing arrived within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }
}

export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
}

export interface KubeletStub {
  registrations: Inbox<RegisterRequest>;
  stop(): void;
}

const api = loadDevicePluginApi();

/** The kubelet's side of device-plugin registration: a Registration server from the same proto on `dir/kubelet.sock`. */
export async function startKubeletStub(dir: string): Promise<KubeletStub> {
  const registrations = new Inbox<RegisterRequest>();
  const server = new grpc.Server();
  server.addService(api.Registration.service, {
    Register: (call: grpc.ServerUnaryCall<RegisterRequest, object>, callback: grpc.sendUnaryData<object>) => {
      registrations.push(call.request);
      callback(null, {});
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${join(dir, KUBELET_SOCKET)}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
  );
  return { registrations, stop: () => server.forceShutdown() };
}

export type PluginClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** A client of the plugin's DevicePlugin service, as the kubelet dials it. */
export function pluginClient(dir: string, endpoint: string): PluginClient {
  return new api.DevicePlugin(`unix://${join(dir, endpoint)}`, grpc.credentials.createInsecure()) as unknown as PluginClient;
}

export const unary = <T>(client: PluginClient, method: string, request: object): Promise<T> =>
  new Promise((resolve, reject) => client[method]!(request, (error: Error | null, response: T) => (error ? reject(error) : resolve(response))));

/** Opens ListAndWatch; every device list the plugin sends arrives in `updates`. */
export function watchDevices(client: PluginClient): { updates: Inbox<Device[]>; cancel(): void } {
  const updates = new Inbox<Device[]>();
  const call = client.ListAndWatch!({}) as grpc.ClientReadableStream<{ devices: Device[] }>;
  call.on("data", (message: { devices: Device[] }) => updates.push(message.devices));
  call.on("error", () => undefined);
  return { updates, cancel: () => call.cancel() };
}
