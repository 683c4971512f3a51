import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { encodeFrame, FrameReader, MessageType } from "../hypervisor/framing.js";
import { ttrpcRequest, ttrpcResponse } from "../hypervisor/protos.js";

export interface ReceivedCall {
  service: string;
  method: string;
  metadata: Record<string, string>;
  payload: Buffer;
}

/** How the fake answers one call: a status and payload, a connection reset, or nothing at all. */
export type Answer = { code?: number; message?: string; payload?: Uint8Array } | "reset" | "silence";

export interface FakeAgent {
  endpoint: string;
  calls: ReceivedCall[];
  connections: number;
  close(): Promise<void>;
}

/** A stand-in for a pod VM's agent on 127.0.0.1: decodes each ttrpc request and answers as `answer` says. */
export async function startFakeAgent(answer: (call: ReceivedCall) => Answer): Promise<FakeAgent> {
  const fake = { calls: [] as ReceivedCall[], connections: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    fake.connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const reader = new FrameReader();
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      for (const event of reader.push(chunk)) {
        if (event.kind !== "frame") continue;
        const request = ttrpcRequest.decode(event.data);
        const call = { service: request.service, method: request.method, payload: request.payload, metadata: Object.fromEntries(request.metadata.map((kv) => [kv.key, kv.value])) };
        fake.calls.push(call);
        const reply = answer(call);
        if (reply === "reset") return void socket.resetAndDestroy();
        if (reply === "silence") continue;
        const response = ttrpcResponse.encode({ status: { code: reply.code ?? 0, message: reply.message ?? "" }, payload: Buffer.from(reply.payload ?? []) });
        socket.write(encodeFrame(event.streamId, MessageType.response, 0, response));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(fake, {
    endpoint: `tcp:127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  });
}

/** The stand-in agents of one suite: `start` makes one, `closeAll` (its afterEach) closes each. */
export function fakeAgents(): { start: (answer: (call: ReceivedCall) => Answer) => Promise<FakeAgent>; closeAll: () => Promise<void> } {
  const started: FakeAgent[] = [];
  return {
    start: async (answer) => {
      const fake = await startFakeAgent(answer);
      started.push(fake);
      return fake;
    },
    closeAll: async () => {
      await Promise.all(started.splice(0).map((fake) => fake.close()));
    },
  };
}
