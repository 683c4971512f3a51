import { connect, type Socket } from "node:net";
import { encodeFrame, FrameReader, MessageType } from "../hypervisor/framing.js";
import { ttrpcRequest, ttrpcResponse, type RpcStatus } from "../hypervisor/protos.js";

export interface Reply {
  streamId: number;
  status: RpcStatus;
  payload: Buffer;
}

/** A minimal ttrpc client for unit tests (the e2e test uses containerd's own Go client). */
export class TestTtrpcClient {
  readonly #reader = new FrameReader(Number.MAX_SAFE_INTEGER);
  readonly #waiting = new Map<number, (reply: Reply) => void>();
  #nextStream = 1;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const event of this.#reader.push(chunk)) {
        if (event.kind !== "frame") continue;
        const response = ttrpcResponse.decode(event.data);
        this.#waiting.get(event.streamId)?.({ streamId: event.streamId, status: response.status ?? { code: 0, message: "" }, payload: response.payload });
        this.#waiting.delete(event.streamId);
      }
    });
  }

  static open(path: string): Promise<TestTtrpcClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new TestTtrpcClient(socket)));
      socket.once("error", reject);
    });
  }

  /** Waits for the response on `streamId` (sent by `call` or written raw). */
  reply(streamId: number): Promise<Reply> {
    return new Promise((resolve) => this.#waiting.set(streamId, resolve));
  }

  call(service: string, method: string, payload: Uint8Array = new Uint8Array(), timeoutNano = 0): Promise<Reply> {
    const streamId = this.#nextStream;
    this.#nextStream += 2;
    const reply = this.reply(streamId);
    const request = ttrpcRequest.encode({ service, method, payload: Buffer.from(payload), timeout_nano: timeoutNano });
    this.socket.write(encodeFrame(streamId, MessageType.request, 0, request));
    return reply;
  }

  close(): void {
    this.socket.destroy();
  }
}
