import assert from "node:assert/strict";
import fc from "fast-check";
import { kataHealthCheck } from "../test-support/agents.js";
import { answeredOutsideTtrpc, encodeFrame, FrameReader, HEADER_BYTES, MAX_DATA_BYTES, MessageType, type ReadEvent } from "./framing.js";

const frames = (events: ReadEvent[]): { streamId: number; type: number; flags: number; data: string }[] =>
  events.map((e) => ({ streamId: e.streamId, type: e.type, flags: e.flags, data: e.kind === "frame" ? e.data.toString("hex") : `oversize:${e.length}` }));

/** Feeds `bytes` to a reader in pieces cut at `cuts` (sorted offsets). */
function readInPieces(reader: FrameReader, bytes: Buffer, cuts: number[]): ReadEvent[] {
  const events: ReadEvent[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...reader.push(bytes.subarray(start, cut)));
    start = cut;
  }
  return events;
}

describe("ttrpc framing", () => {
  it("writes the 10-byte big-endian header ttrpc specifies", () => {
    const frame = encodeFrame(0x01020304, MessageType.response, 0x05, Buffer.from("hi"));
    assert.equal(frame.toString("hex"), "00000002" + "01020304" + "02" + "05" + Buffer.from("hi").toString("hex"));
    assert.equal(HEADER_BYTES, 10);
  });

  it("reads frames back whatever way the stream is cut (short reads)", () => {
    const frameArb = fc.record({
      streamId: fc.integer({ min: 0, max: 0xffffffff }),
      type: fc.integer({ min: 0, max: 255 }),
      flags: fc.integer({ min: 0, max: 255 }),
      data: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 20 }), (input, rawCuts) => {
        const bytes = Buffer.concat(input.map((f) => encodeFrame(f.streamId, f.type, f.flags, f.data)));
        const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const events = readInPieces(new FrameReader(), bytes, cuts);
        assert.deepEqual(frames(events), input.map((f) => ({ streamId: f.streamId, type: f.type, flags: f.flags, data: Buffer.from(f.data).toString("hex") })));
      }),
    );
  });

  it("reads a frame delivered one byte at a time", () => {
    const bytes = encodeFrame(7, MessageType.request, 0, Buffer.from("payload"));
    const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    const events = readInPieces(new FrameReader(), bytes, cuts);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.kind === "frame" && events[0].data.toString(), "payload");
  });

  it("reads an empty frame", () => {
    assert.deepEqual(frames(new FrameReader().push(encodeFrame(3, MessageType.request, 0, new Uint8Array()))), [{ streamId: 3, type: 1, flags: 0, data: "" }]);
  });

  it("reports an oversize frame once, skips its data, and reads the next frame", () => {
    const reader = new FrameReader(16);
    const big = encodeFrame(1, MessageType.request, 0, Buffer.alloc(40, 0xaa));
    const next = encodeFrame(3, MessageType.request, 0, Buffer.from("ok"));
    const bytes = Buffer.concat([big, next]);
    const events = readInPieces(reader, bytes, [4, 12, 20, 45, 51]);
    assert.deepEqual(frames(events), [
      { streamId: 1, type: 1, flags: 0, data: "oversize:40" },
      { streamId: 3, type: 1, flags: 0, data: Buffer.from("ok").toString("hex") },
    ]);
  });

  it("holds ttrpc's 4 MiB limit by default, and refuses to write more", () => {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(MAX_DATA_BYTES + 1, 0);
    header.writeUInt32BE(5, 4);
    const events = new FrameReader().push(header);
    assert.equal(events[0]?.kind, "oversize");
    assert.throws(() => encodeFrame(1, MessageType.response, 0, Buffer.alloc(MAX_DATA_BYTES + 1)), /exceeds the maximum/);
  });

  it("tells an agent that answers a ttrpc request outside ttrpc from one that speaks it", () => {
    const request = kataHealthCheck();
    const line = Buffer.from("error: unknown command \n");
    assert.equal(answeredOutsideTtrpc(request, line), true, "the local image's line agent");
    assert.equal(answeredOutsideTtrpc(request, Buffer.from("HTTP/1.1 400 Bad Request\r\n")), true);
    assert.equal(answeredOutsideTtrpc(request, encodeFrame(1, MessageType.response, 0, Buffer.from("ok"))), false);
    assert.equal(answeredOutsideTtrpc(request, encodeFrame(1, MessageType.data, 0, Buffer.alloc(0))), false);
    assert.equal(answeredOutsideTtrpc(request, request), false, "an echo of the request is still a frame");
    assert.equal(answeredOutsideTtrpc(Buffer.from("echo hello\n"), Buffer.from("hello\n and more")), false, "a client that spoke no ttrpc is none of its business");
    assert.equal(answeredOutsideTtrpc(request, Buffer.from("pong\n")), false, "fewer bytes than a header: no verdict");
    assert.equal(answeredOutsideTtrpc(request.subarray(0, 4), line), false);
  });
});
