import { once } from "node:events";
import { createServer, type AddressInfo, type Server } from "node:net";
import { encodeFrame, MessageType } from "../hypervisor/framing.js";
import { ttrpcRequest } from "../hypervisor/protos.js";

/** Stands in for an agent that speaks a line protocol, not ttrpc (as the local pod VM image did before peerpods-agent). */
export async function lineAgent(): Promise<{ server: Server; endpoint: string }> {
  const server = createServer((socket) => {
    let pending = "";
    socket.on("data", (chunk: Buffer) => {
      const lines = (pending + chunk.toString("latin1")).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const [command = "", ...rest] = line.split(" ");
        socket.write(command === "ping" ? "pong\n" : command === "echo" ? `${rest.join(" ")}\n` : `error: unknown command ${command}\n`);
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, endpoint: `tcp:127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** The Kata shim's first call on the agent socket: grpc.Health/Check as a ttrpc request frame. */
export function kataHealthCheck(streamId = 1): Buffer {
  return encodeFrame(streamId, MessageType.request, 0, ttrpcRequest.encode({ service: "grpc.Health", method: "Check", payload: Buffer.alloc(0) }));
}
