import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { silentLogger } from "../log/logger.js";
import { TestTtrpcClient } from "../test-support/ttrpc-client.js";
import { encodeFrame, MessageType } from "./framing.js";
import { ttrpcRequest } from "./protos.js";
import { Code, RpcError, startTtrpcServer, type CallOutcome, type Services, type TtrpcServer } from "./ttrpc.js";

describe("ttrpc server", () => {
  let dir: string;
  let server: TtrpcServer;
  let client: TestTtrpcClient;
  const outcomes: CallOutcome[] = [];
  let aborted: unknown;

  const services: Services = {
    "test.Echo": {
      Echo: async (payload) => payload,
      /** Answers after the number of milliseconds in its payload (so replies can overtake each other), unless the call is aborted first. */
      Delay: async (payload, { signal }) => {
        await sleep(Number(payload.toString()), undefined, { signal });
        return payload;
      },
      Fail: async () => {
        throw new RpcError(Code.FAILED_PRECONDITION, "not ready");
      },
      Crash: async () => {
        throw new Error("boom");
      },
      WaitForAbort: (_payload, { signal }) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            aborted = signal.reason;
            reject(new RpcError(Code.DEADLINE_EXCEEDED, "gave up"));
          });
        }),
    },
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "peerpods-ttrpc-"));
    server = await startTtrpcServer({ path: join(dir, "sub", "t.sock"), services, log: silentLogger, maxDataBytes: 1024, observe: (o) => outcomes.push(o) });
    client = await TestTtrpcClient.open(join(dir, "sub", "t.sock"));
  });
  after(async () => {
    client.close();
    await server.close(0);
    await rm(dir, { recursive: true, force: true });
  });

  it("answers a unary call with status OK and the handler's payload", async () => {
    const reply = await client.call("test.Echo", "Echo", Buffer.from("hello"));
    assert.equal(reply.status.code, Code.OK);
    assert.equal(reply.payload.toString(), "hello");
    assert.deepEqual({ ...outcomes.at(-1), seconds: 0 }, { service: "test.Echo", method: "Echo", known: true, code: Code.OK, seconds: 0 });
  });

  it("answers an unknown method or service with UNIMPLEMENTED", async () => {
    const method = await client.call("test.Echo", "Nope");
    assert.equal(method.status.code, Code.UNIMPLEMENTED);
    assert.match(method.status.message, /method Nope/);
    const service = await client.call("other.Service", "Echo");
    assert.equal(service.status.code, Code.UNIMPLEMENTED);
    assert.match(service.status.message, /service other.Service/);
    assert.equal(outcomes.at(-1)?.known, false);
  });

  it("passes a handler's RpcError through, and turns a crash into UNKNOWN without dying", async () => {
    const failed = (await client.call("test.Echo", "Fail")).status;
    assert.deepEqual([failed.code, failed.message], [Code.FAILED_PRECONDITION, "not ready"]);
    const crashed = (await client.call("test.Echo", "Crash")).status;
    assert.deepEqual([crashed.code, crashed.message], [Code.UNKNOWN, "boom"]);
    assert.equal((await client.call("test.Echo", "Echo", Buffer.from("still here"))).payload.toString(), "still here");
  });

  it("serves concurrent streams on one connection and answers each on its own stream id", async () => {
    const delays = [120, 10, 60, 0, 90];
    const order: number[] = [];
    const replies = await Promise.all(
      delays.map((ms) =>
        client.call("test.Echo", "Delay", Buffer.from(String(ms))).then((reply) => {
          order.push(Number(reply.payload.toString()));
          return reply;
        }),
      ),
    );
    assert.deepEqual(replies.map((r) => Number(r.payload.toString())), delays);
    assert.deepEqual(order, [...delays].sort((a, b) => a - b), "fast calls are not held behind slow ones");
  });

  it("turns the caller's timeout_nano into an aborted signal", async () => {
    const reply = await client.call("test.Echo", "WaitForAbort", new Uint8Array(), 50_000_000);
    assert.equal(reply.status.code, Code.DEADLINE_EXCEEDED);
    assert.ok(aborted instanceof Error);
  });

  it("treats a deadline beyond what a timer can hold as no deadline", async () => {
    const reply = await client.call("test.Echo", "Delay", Buffer.from("20"), 30 * 24 * 3600 * 1e9);
    assert.equal(reply.status.code, Code.OK);
  });

  it("discards an oversize frame with RESOURCE_EXHAUSTED and keeps the connection usable", async () => {
    const streamId = 1001;
    const reply = client.reply(streamId);
    const request = ttrpcRequest.encode({ service: "test.Echo", method: "Echo", payload: Buffer.alloc(2000, 1) });
    client.socket.write(encodeFrame(streamId, MessageType.request, 0, request));
    assert.equal((await reply).status.code, Code.RESOURCE_EXHAUSTED);
    const after = await client.call("test.Echo", "Echo", Buffer.from("next"));
    assert.equal(after.payload.toString(), "next");
  });

  it("rejects even stream ids, re-used stream ids and undecodable requests with INVALID_ARGUMENT", async () => {
    const other = await TestTtrpcClient.open(server.server.address() as string);
    try {
      const even = other.reply(2);
      other.socket.write(encodeFrame(2, MessageType.request, 0, new Uint8Array()));
      assert.equal((await even).status.code, Code.INVALID_ARGUMENT);

      const first = other.reply(5);
      other.socket.write(encodeFrame(5, MessageType.request, 0, ttrpcRequest.encode({ service: "test.Echo", method: "Echo" })));
      await first;
      const reused = other.reply(5);
      other.socket.write(encodeFrame(5, MessageType.request, 0, ttrpcRequest.encode({ service: "test.Echo", method: "Echo" })));
      assert.match((await reused).status.message, /re-used/);

      const garbage = other.reply(7);
      other.socket.write(encodeFrame(7, MessageType.request, 0, Buffer.from([0xff, 0xff, 0xff])));
      assert.equal((await garbage).status.code, Code.INVALID_ARGUMENT);
    } finally {
      other.close();
    }
  });

  it("refuses to start over a path that is not a socket", async () => {
    const file = join(dir, "not-a-socket");
    await writeFile(file, "keep me");
    await assert.rejects(startTtrpcServer({ path: file, services, log: silentLogger }), /not a socket/);
    assert.equal((await stat(file)).size, 7);
  });

  it("replaces a stale socket and removes its socket on close", async () => {
    const path = join(dir, "again.sock");
    const crashed = `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`;
    spawnSync(process.execPath, ["-e", crashed]);
    assert.ok((await stat(path)).isSocket(), "a crashed process left its socket behind");
    const restarted = await startTtrpcServer({ path, services, log: silentLogger });
    const fresh = await TestTtrpcClient.open(path);
    assert.equal((await fresh.call("test.Echo", "Echo", Buffer.from("up"))).payload.toString(), "up");
    fresh.close();
    await restarted.close(0);
    await assert.rejects(stat(path), { code: "ENOENT" });
  });
});
