import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { silentLogger } from "../log/logger.js";
import { kataHealthCheck, lineAgent } from "../test-support/agents.js";
import { encodeFrame, MessageType } from "./framing.js";
import { parseAgentEndpoint, probeEndpoint, startForwarder, type Forwarder } from "./forwarder.js";

/** Stands in for the agent in the VM: echoes every byte back. */
async function echoServer(): Promise<{ server: Server; endpoint: string }> {
  const server = createServer((socket) => socket.pipe(socket));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, endpoint: `tcp:127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function roundTrip(path: string, payload: Buffer): Promise<Buffer> {
  const socket = connect(path);
  await once(socket, "connect");
  const received: Buffer[] = [];
  let length = 0;
  const done = new Promise<void>((resolve) =>
    socket.on("data", (chunk: Buffer) => {
      received.push(chunk);
      length += chunk.length;
      if (length >= payload.length) resolve();
    }),
  );
  socket.write(payload);
  await done;
  socket.destroy();
  return Buffer.concat(received);
}

/** Sends `payload` and resolves with the first bytes that come back. */
async function firstAnswer(path: string, payload: Buffer): Promise<Buffer> {
  const socket = connect(path);
  socket.write(payload);
  const [chunk] = (await once(socket, "data")) as [Buffer];
  socket.destroy();
  return chunk;
}

describe("agent socket forwarder", () => {
  let dir: string;
  let agent: Awaited<ReturnType<typeof echoServer>>;
  const forwarders: Forwarder[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "peerpods-fwd-"));
    agent = await echoServer();
  });
  after(async () => {
    await Promise.all(forwarders.map((f) => f.close()));
    agent.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("parses unix and tcp agent endpoints and rejects anything else", () => {
    assert.deepEqual(parseAgentEndpoint("unix:/run/vm/agent.sock"), { path: "/run/vm/agent.sock" });
    assert.deepEqual(parseAgentEndpoint("tcp:127.0.0.1:15150"), { host: "127.0.0.1", port: 15150 });
    assert.deepEqual(parseAgentEndpoint("tcp:[::1]:80"), { host: "::1", port: 80 });
    assert.deepEqual(parseAgentEndpoint("tcp:vm-1.internal:1024"), { host: "vm-1.internal", port: 1024 });
    for (const bad of ["unix:relative", "tcp:127.0.0.1:0", "tcp:127.0.0.1:70000", "tcp:127.0.0.1", "http://x", ""]) {
      assert.throws(() => parseAgentEndpoint(bad), /neither/, bad);
    }
  });

  it("forwards bytes both ways unchanged, over many connections at once, and counts them", async () => {
    let connections = 0;
    let peak = 0;
    const path = join(dir, "sandbox-1", "agent.ttrpc");
    forwarders.push(
      await startForwarder({
        path,
        target: async () => ({ endpoint: agent.endpoint }),
        log: silentLogger,
        onConnections: (delta) => {
          connections += delta;
          peak = Math.max(peak, connections);
        },
      }),
    );
    assert.ok((await stat(path)).isSocket());
    const payloads = Array.from({ length: 5 }, (_, i) => randomBytes(64 * 1024 * (i + 1)));
    const echoed = await Promise.all(payloads.map((p) => roundTrip(path, p)));
    echoed.forEach((bytes, i) => assert.ok(bytes.equals(payloads[i]!), `connection ${i} got its bytes back`));
    assert.ok(peak >= 2, "connections were open at the same time");
    for (let i = 0; i < 50 && connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(connections, 0);
  });

  it("delivers the agent's answer after the shim has closed its write side (half-close)", async () => {
    const path = join(dir, "sandbox-5", "agent.ttrpc");
    forwarders.push(await startForwarder({ path, target: async () => ({ endpoint: agent.endpoint }), log: silentLogger }));
    const socket = connect(path);
    socket.end("last words");
    const received: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    await once(socket, "end");
    assert.equal(Buffer.concat(received).toString(), "last words");
  });

  it("replays the shim's bytes, once, when a port forwarder resets connections nothing listened to", async () => {
    // Like qemu's user-mode network in front of a guest that is not listening yet: accept, then reset.
    let resets = 2;
    const received: string[] = [];
    const flaky = createServer((socket) => {
      if (resets-- > 0) {
        socket.resetAndDestroy();
        return;
      }
      socket.on("data", (chunk: Buffer) => received.push(chunk.toString()));
      socket.pipe(socket);
    });
    flaky.listen(0, "127.0.0.1");
    await once(flaky, "listening");
    try {
      const path = join(dir, "sandbox-6", "agent.ttrpc");
      forwarders.push(await startForwarder({ path, target: async () => ({ endpoint: `tcp:127.0.0.1:${(flaky.address() as AddressInfo).port}` }), log: silentLogger }));
      assert.equal((await roundTrip(path, Buffer.from("request-1"))).toString(), "request-1");
      assert.deepEqual(received, ["request-1"], "the agent got the bytes exactly once");
    } finally {
      flaky.close();
    }
  });

  it("asks for the endpoint on each connection, so a VM that gets its endpoint late is reached", async () => {
    const vm: { endpoint?: string } = {};
    const path = join(dir, "sandbox-2", "agent.ttrpc");
    forwarders.push(
      await startForwarder({
        path,
        target: async () => (vm.endpoint ? { endpoint: vm.endpoint } : Promise.reject(new Error("VM still booting"))),
        log: silentLogger,
      }),
    );
    const early = connect(path);
    await once(early, "close");
    vm.endpoint = agent.endpoint;
    assert.equal((await roundTrip(path, Buffer.from("late"))).toString(), "late");
  });

  it("closes the shim's connection when the agent cannot be reached", async () => {
    const path = join(dir, "sandbox-3", "agent.ttrpc");
    forwarders.push(await startForwarder({ path, target: async () => ({ endpoint: "tcp:127.0.0.1:1" }), log: silentLogger }));
    const socket: Socket = connect(path);
    await once(socket, "close");
  });

  it("closing removes the socket and drops open connections", async () => {
    const path = join(dir, "sandbox-4", "agent.ttrpc");
    const forwarder = await startForwarder({ path, target: async () => ({ endpoint: agent.endpoint }), log: silentLogger });
    const socket = connect(path);
    await once(socket, "connect");
    const closed = once(socket, "close");
    await forwarder.close();
    await closed;
    await assert.rejects(stat(path), { code: "ENOENT" });
  });

  it("closes a ttrpc client's connection at once when the agent answers outside ttrpc, and says what it answered", async () => {
    const line = await lineAgent();
    try {
      const answers: string[] = [];
      const path = join(dir, "sandbox-7", "agent.ttrpc");
      forwarders.push(await startForwarder({ path, target: async () => ({ endpoint: line.endpoint }), log: silentLogger, onForeignAgent: (answer) => answers.push(answer.toString("latin1")) }));
      const socket = connect(path);
      socket.setTimeout(3000, () => socket.destroy());
      const received: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => received.push(chunk));
      const started = Date.now();
      socket.write(kataHealthCheck());
      await once(socket, "close");
      assert.ok(Date.now() - started < 900, "closed before the settle time, not after a client's timeout");
      assert.equal(Buffer.concat(received).length, 0, "the client got none of the foreign answer");
      assert.equal(answers.length, 1);
      assert.match(answers[0]!, /^error: unknown command/);
      // The same agent spoken to in its own protocol is forwarded as ever.
      assert.equal((await firstAnswer(path, Buffer.from("echo hello\n"))).toString(), "hello\n");
      assert.equal(answers.length, 1);
    } finally {
      line.server.close();
    }
  });

  it("leaves a ttrpc agent's answers alone", async () => {
    const ttrpcAgent = createServer((socket) => socket.once("data", () => socket.write(encodeFrame(1, MessageType.response, 0, Buffer.from([0x12, 0x00])))));
    ttrpcAgent.listen(0, "127.0.0.1");
    await once(ttrpcAgent, "listening");
    try {
      let foreign = 0;
      const path = join(dir, "sandbox-8", "agent.ttrpc");
      forwarders.push(await startForwarder({ path, target: async () => ({ endpoint: `tcp:127.0.0.1:${(ttrpcAgent.address() as AddressInfo).port}` }), log: silentLogger, onForeignAgent: () => foreign++ }));
      const answer = await firstAnswer(path, kataHealthCheck());
      assert.equal(answer.readUInt8(8), MessageType.response);
      assert.equal(foreign, 0);
    } finally {
      ttrpcAgent.close();
    }
  });

  it("probes an endpoint: open port true; closed port, nothing behind a forwarded port, or missing socket false", async () => {
    assert.equal(await probeEndpoint({ endpoint: agent.endpoint }, 1000), true);
    const resetting = createServer((socket) => socket.resetAndDestroy()).listen(0, "127.0.0.1");
    await once(resetting, "listening");
    assert.equal(await probeEndpoint({ endpoint: `tcp:127.0.0.1:${(resetting.address() as AddressInfo).port}` }, 1000), false);
    resetting.close();
    assert.equal(await probeEndpoint({ endpoint: "tcp:127.0.0.1:1" }, 1000), false);
    assert.equal(await probeEndpoint({ endpoint: `unix:${join(dir, "nothing.sock")}` }, 1000), false);
  });
});
