import { lstat, mkdir, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "../log/logger.js";
import { encodeFrame, FrameReader, MAX_DATA_BYTES, MessageType, type ReadEvent } from "./framing.js";
import { ttrpcRequest, ttrpcResponse, type TtrpcRequest } from "./protos.js";

const MAX_TIMER_MS = 2 ** 31 - 1;

/** google.rpc.Code values ttrpc statuses use. */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

const CODE_NAMES = new Map<number, string>(Object.entries(Code).map(([name, code]) => [code, name.toLowerCase()]));

/** `ok`, `not_found`, ...: a status code as a metric label. */
export function codeName(code: number): string {
  return CODE_NAMES.get(code) ?? `code_${code}`;
}

/** An error a handler throws to answer with a specific status; anything else becomes UNKNOWN. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface CallContext {
  /** Aborted when the caller's deadline (timeout_nano) passes or its connection closes. */
  signal: AbortSignal;
}

export type UnaryHandler = (payload: Buffer, call: CallContext) => Promise<Uint8Array>;

/** Handlers by full service name, then method name. */
export type Services = Record<string, Record<string, UnaryHandler>>;

export interface CallOutcome {
  service: string;
  method: string;
  /** The service and method are registered (so the names are safe as metric labels). */
  known: boolean;
  code: number;
  seconds: number;
}

export interface TtrpcServerOptions {
  path: string;
  services: Services;
  log: Logger;
  maxDataBytes?: number;
  /** Called once per answered request. */
  observe?: (outcome: CallOutcome) => void;
}

export interface TtrpcServer {
  server: Server;
  /** Stops accepting, lets in-flight calls finish up to `graceMs`, then drops connections and removes the socket. */
  close(graceMs: number): Promise<void>;
}

/** A ttrpc server (unary calls only, which is all the hypervisor service has) on a unix socket. */
export async function startTtrpcServer(options: TtrpcServerOptions): Promise<TtrpcServer> {
  const connections = new Set<Connection>();
  const server = createServer((socket) => {
    const connection = new Connection(socket, options);
    connections.add(connection);
    socket.on("close", () => connections.delete(connection));
  });
  await mkdir(dirname(options.path), { recursive: true });
  await removeStaleSocket(options.path);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (error) => options.log.error({ err: error }, "ttrpc server error"));
  return {
    server,
    close: async (graceMs) => {
      const closed = new Promise((resolve) => server.close(resolve));
      const idle = Promise.all([...connections].map((c) => c.idle()));
      await Promise.race([idle, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
      for (const connection of connections) connection.destroy();
      await closed;
      await rm(options.path, { force: true });
    },
  };
}

/** Removes a socket left by a previous run; refuses to remove anything that is not a socket. */
async function removeStaleSocket(path: string): Promise<void> {
  const stats = await lstat(path).catch(() => undefined);
  if (!stats) return;
  if (!stats.isSocket()) throw new Error(`${path} exists and is not a socket`);
  await rm(path);
}

class Connection {
  readonly #reader: FrameReader;
  readonly #closed = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  #lastStreamId = 0;

  constructor(
    private readonly socket: Socket,
    private readonly options: TtrpcServerOptions,
  ) {
    this.#reader = new FrameReader(options.maxDataBytes ?? MAX_DATA_BYTES);
    socket.on("data", (chunk: Buffer) => {
      for (const event of this.#reader.push(chunk)) this.#onEvent(event);
    });
    socket.on("close", () => this.#closed.abort(new Error("connection closed")));
    socket.on("error", (error) => options.log.debug({ err: error }, "ttrpc connection error"));
  }

  async idle(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #onEvent(event: ReadEvent): void {
    if (event.kind === "oversize") {
      this.#reply(event.streamId, Code.RESOURCE_EXHAUSTED, `message length ${event.length} exceeds the maximum message size of ${this.options.maxDataBytes ?? MAX_DATA_BYTES}`);
      return;
    }
    if (event.streamId % 2 !== 1) {
      this.#reply(event.streamId, Code.INVALID_ARGUMENT, "StreamID must be odd for client initiated streams");
      return;
    }
    if (event.type === MessageType.data) {
      this.#reply(event.streamId, Code.INVALID_ARGUMENT, "StreamID is no longer active");
      return;
    }
    if (event.type !== MessageType.request) return; // unknown types are ignored for forward compatibility
    if (event.streamId <= this.#lastStreamId) {
      this.#reply(event.streamId, Code.INVALID_ARGUMENT, "StreamID cannot be re-used and must increment");
      return;
    }
    this.#lastStreamId = event.streamId;
    let request: TtrpcRequest;
    try {
      request = ttrpcRequest.decode(event.data);
    } catch (error) {
      this.#reply(event.streamId, Code.INVALID_ARGUMENT, `unmarshal request error: ${(error as Error).message}`);
      return;
    }
    const call = this.#call(event.streamId, request);
    this.#inFlight.add(call);
    void call.finally(() => this.#inFlight.delete(call));
  }

  async #call(streamId: number, request: TtrpcRequest): Promise<void> {
    const started = process.hrtime.bigint();
    const handler = this.options.services[request.service]?.[request.method];
    let code: number = Code.OK;
    let message = "";
    let payload: Uint8Array = new Uint8Array();
    if (!handler) {
      code = Code.UNIMPLEMENTED;
      message = this.options.services[request.service] ? `method ${request.method}` : `service ${request.service}`;
    } else {
      const signals = [this.#closed.signal];
      // Timers take at most 2^31-1 ms; a later deadline is as good as none.
      const timeoutMs = Math.round(request.timeout_nano / 1e6);
      if (timeoutMs > 0 && timeoutMs < MAX_TIMER_MS) signals.push(AbortSignal.timeout(timeoutMs));
      try {
        payload = await handler(request.payload, { signal: AbortSignal.any(signals) });
      } catch (error) {
        code = error instanceof RpcError ? error.code : Code.UNKNOWN;
        message = (error as Error).message;
        if (!(error instanceof RpcError)) this.options.log.error({ err: error, method: `${request.service}/${request.method}` }, "ttrpc handler failed");
      }
    }
    this.#reply(streamId, code, message, payload);
    this.options.observe?.({
      service: request.service,
      method: request.method,
      known: Boolean(handler),
      code,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    });
  }

  #reply(streamId: number, code: number, message: string, payload: Uint8Array = new Uint8Array()): void {
    if (this.socket.destroyed) return;
    const response = ttrpcResponse.encode({ status: { code, message }, payload: Buffer.from(payload) });
    if (response.length > MAX_DATA_BYTES) {
      this.#reply(streamId, Code.RESOURCE_EXHAUSTED, `response of ${response.length} bytes exceeds the maximum message size of ${MAX_DATA_BYTES}`);
      return;
    }
    this.socket.write(encodeFrame(streamId, MessageType.response, 0, response));
  }
}
