import type { Socket } from "node:net";
import type { AgentTarget } from "../agent-tls/target.js";
import { connectAgent } from "../hypervisor/forwarder.js";
import { encodeFrame, FrameReader, MessageType } from "../hypervisor/framing.js";
import { ttrpcRequest, ttrpcResponse } from "../hypervisor/protos.js";

/** A call the server answered with a status other than OK (google.rpc codes, as ttrpc uses). */
export class TtrpcStatusError extends Error {
  constructor(
    readonly code: number,
    readonly method: string,
    message: string,
  ) {
    super(`${method}: ${message}`);
  }
}

/** The connection was reset before the server answered anything: nothing ran to completion, so a retry is safe. */
export class ResetBeforeAnswer extends Error {}

export interface CallOptions {
  timeoutMs: number;
  metadata?: Record<string, string>;
}

interface Pending {
  method: string;
  resolve: (payload: Buffer) => void;
  reject: (error: Error) => void;
}

/**
 * A ttrpc client of unary calls over one connection: `tcp:HOST:PORT` or a unix socket path (TLS when the target has it).
 * Calls may overlap; each has its own deadline, sent to the server as ttrpc's timeout_nano.
 */
export class TtrpcClient {
  readonly #reader = new FrameReader(Number.MAX_SAFE_INTEGER);
  readonly #pending = new Map<number, Pending>();
  #nextStream = 1;
  #answered = false;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const event of this.#reader.push(chunk)) if (event.kind === "frame" && event.type === MessageType.response) this.#answer(event.streamId, event.data);
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      const failure = error.code === "ECONNRESET" && !this.#answered ? new ResetBeforeAnswer(error.message, { cause: error }) : error;
      this.#failAll(failure);
    });
    socket.on("close", () => this.#failAll(new Error("the connection closed before the answer")));
  }

  static connect(target: AgentTarget, timeoutMs: number): Promise<TtrpcClient> {
    const endpoint = /^(tcp|unix):/.test(target.endpoint) ? target.endpoint : `unix:${target.endpoint}`;
    return new Promise((resolve, reject) => {
      const { socket, ready } = connectAgent({ ...target, endpoint });
      const timer = setTimeout(() => socket.destroy(new Error(`no connection to ${endpoint} within ${timeoutMs} ms`)), timeoutMs);
      socket.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(error.code === "ECONNRESET" ? new ResetBeforeAnswer(error.message, { cause: error }) : error);
      });
      socket.once(ready, () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        resolve(new TtrpcClient(socket));
      });
    });
  }

  /** Sends one request and resolves with the response's payload; a non-OK status rejects with TtrpcStatusError. */
  call(service: string, method: string, payload: Uint8Array, options: CallOptions): Promise<Buffer> {
    const streamId = this.#nextStream;
    this.#nextStream += 2;
    const request = ttrpcRequest.encode({
      service,
      method,
      payload: Buffer.from(payload),
      timeout_nano: options.timeoutMs * 1e6,
      metadata: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    });
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => this.#settle(streamId)?.reject(new Error(`${method}: no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
      const done = (): void => clearTimeout(timer);
      this.#pending.set(streamId, {
        method,
        resolve: (answer) => (done(), resolve(answer)),
        reject: (error) => (done(), reject(error)),
      });
      this.socket.write(encodeFrame(streamId, MessageType.request, 0, request));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  #settle(streamId: number): Pending | undefined {
    const pending = this.#pending.get(streamId);
    this.#pending.delete(streamId);
    return pending;
  }

  #answer(streamId: number, data: Buffer): void {
    this.#answered = true;
    const pending = this.#settle(streamId);
    if (!pending) return;
    try {
      const response = ttrpcResponse.decode(data);
      const status = response.status ?? { code: 0, message: "" };
      if (status.code === 0) pending.resolve(response.payload);
      else pending.reject(new TtrpcStatusError(status.code, pending.method, status.message));
    } catch (error) {
      pending.reject(new Error(`${pending.method}: the answer is not a ttrpc response: ${(error as Error).message}`));
    }
  }

  #failAll(error: Error): void {
    for (const streamId of [...this.#pending.keys()]) this.#settle(streamId)?.reject(error);
  }
}
