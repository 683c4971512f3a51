import { join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

/** The upstream .proto files (ttrpc's envelope, google.rpc.Status, Kata's hypervisor service). */
const PROTO_DIR = fileURLToPath(new URL("./proto/", import.meta.url));

const root = new protobuf.Root();
// google/protobuf/* ship with protobufjs; everything else is ours.
root.resolvePath = (_origin, target) => (target.startsWith("google/protobuf/") ? target : join(PROTO_DIR, target));
root.loadSync(["request.proto", "hypervisor.proto"], { keepCase: true });

/** A protobuf message type with plain-object encode/decode (every field present, int64 as number). */
export interface Codec<T> {
  encode(value: Partial<T>): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** The codec of message type `name` in `protos` (a loaded protobufjs root). */
export function codecOf<T>(protos: protobuf.Root, name: string): Codec<T> {
  const type = protos.lookupType(name);
  return {
    encode: (value) => type.encode(type.fromObject(value as Record<string, unknown>)).finish(),
    decode: (bytes) => type.toObject(type.decode(bytes), { longs: Number, bytes: Buffer, defaults: true }) as T,
  };
}

const codec = <T>(name: string): Codec<T> => codecOf<T>(root, name);

export interface RpcStatus {
  code: number;
  message: string;
}

export interface TtrpcRequest {
  service: string;
  method: string;
  payload: Buffer;
  timeout_nano: number;
  metadata: { key: string; value: string }[];
}

export interface TtrpcResponse {
  status?: RpcStatus;
  payload: Buffer;
}

export const ttrpcRequest = codec<TtrpcRequest>("ttrpc.Request");
export const ttrpcResponse = codec<TtrpcResponse>("ttrpc.Response");

/** The full service name the Kata shim calls. */
export const HYPERVISOR_SERVICE = "hypervisor.Hypervisor";

export interface CreateVMRequest {
  id: string;
  annotations: Record<string, string>;
  networkNamespacePath: string;
}

export const hypervisorMessages = {
  versionRequest: codec<{ version: string }>("hypervisor.VersionRequest"),
  versionResponse: codec<{ version: string }>("hypervisor.VersionResponse"),
  createVMRequest: codec<CreateVMRequest>("hypervisor.CreateVMRequest"),
  createVMResponse: codec<{ agentSocketPath: string }>("hypervisor.CreateVMResponse"),
  startVMRequest: codec<{ id: string }>("hypervisor.StartVMRequest"),
  startVMResponse: codec<Record<string, never>>("hypervisor.StartVMResponse"),
  stopVMRequest: codec<{ id: string }>("hypervisor.StopVMRequest"),
  stopVMResponse: codec<Record<string, never>>("hypervisor.StopVMResponse"),
};
