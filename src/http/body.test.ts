import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { PassThrough, Readable } from "node:stream";
import { readJsonBody, readJsonText } from "./body.js";

function request(stream: Readable, headers: Record<string, string> = { "content-type": "application/json" }): IncomingMessage {
  return Object.assign(stream, { headers }) as unknown as IncomingMessage;
}

const chunks = (...parts: string[]): Readable => Readable.from(parts.map((part) => Buffer.from(part)));

describe("request body", () => {
  it("joins a body that came in several chunks", async () => {
    assert.deepEqual(await readJsonBody(request(chunks('{"a":', '[1,', "2]}")), 1024), { a: [1, 2] });
  });

  it("keeps a character split across chunks whole", async () => {
    const bytes = Buffer.from('"é"');
    const stream = Readable.from([bytes.subarray(0, 2), bytes.subarray(2)]);
    assert.equal(await readJsonText(request(stream), 1024), '"é"');
  });

  it("refuses an empty body, a wrong content type, a declared oversize and malformed JSON with their statuses", async () => {
    await assert.rejects(readJsonText(request(chunks()), 1024), { status: 400, message: /empty/ });
    await assert.rejects(readJsonText(request(chunks("{}"), { "content-type": "text/plain" }), 1024), { status: 415 });
    await assert.rejects(readJsonText(request(chunks("{}"), { "content-type": "application/json", "content-length": "2048" }), 1024), { status: 413 });
    await assert.rejects(readJsonBody(request(chunks("{")), 1024), { status: 400, message: /not valid JSON/ });
  });

  it("stops collecting a streamed body past the limit and leaves the stream to be drained, so the 413 can still be answered", async () => {
    const stream = new PassThrough();
    const reading = readJsonText(request(stream), 8);
    stream.write(Buffer.from('{"a":"12345'));
    await assert.rejects(reading, { status: 413 });
    assert.equal(stream.listenerCount("data"), 0);
    assert.equal(stream.destroyed, false);
  });

  it("answers 400 when the stream fails or closes before its end", async () => {
    const failing = new PassThrough();
    const failed = readJsonText(request(failing), 1024);
    failing.destroy(new Error("reset by peer"));
    await assert.rejects(failed, { status: 400, message: /could not be read: reset by peer/ });
    const closing = new PassThrough();
    const closed = readJsonText(request(closing), 1024);
    closing.write("{");
    closing.destroy();
    await assert.rejects(closed, { status: 400, message: /closed before the request body ended/ });
  });
});
