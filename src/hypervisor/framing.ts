/**
 * ttrpc message frames (containerd/ttrpc PROTOCOL.md): a 10-byte big-endian header — data length
 * (uint32), stream id (uint32), message type (uint8), flags (uint8) — followed by the data.
 */
export const HEADER_BYTES = 10;
/** ttrpc's own limit: larger frames are discarded and answered with RESOURCE_EXHAUSTED. */
export const MAX_DATA_BYTES = 4 << 20;

export const MessageType = { request: 1, response: 2, data: 3 } as const;

export interface FrameHeader {
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

export interface Frame extends FrameHeader {
  data: Buffer;
}

/** What the reader found: a whole frame, or the header of one too large to keep (its data is skipped). */
export type ReadEvent = ({ kind: "frame" } & Frame) | ({ kind: "oversize" } & FrameHeader);

export function encodeFrame(streamId: number, type: number, flags: number, data: Uint8Array): Buffer {
  if (data.length > MAX_DATA_BYTES) throw new RangeError(`frame data of ${data.length} bytes exceeds the maximum of ${MAX_DATA_BYTES}`);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + data.length);
  frame.writeUInt32BE(data.length, 0);
  frame.writeUInt32BE(streamId, 4);
  frame.writeUInt8(type, 8);
  frame.writeUInt8(flags, 9);
  frame.set(data, HEADER_BYTES);
  return frame;
}

export function decodeHeader(header: Buffer): FrameHeader {
  return { length: header.readUInt32BE(0), streamId: header.readUInt32BE(4), type: header.readUInt8(8), flags: header.readUInt8(9) };
}

const KNOWN_TYPES: readonly number[] = Object.values(MessageType);

/** Whether `bytes` open with a frame header ttrpc would read: a message type it knows and a length it accepts. */
function opensWithFrame(bytes: Buffer, types: readonly number[]): boolean {
  const header = decodeHeader(bytes);
  return header.length <= MAX_DATA_BYTES && types.includes(header.type);
}

/**
 * True when a connection opened with a ttrpc request and the first bytes that came back are no ttrpc
 * frame: the peer speaks another protocol, and the ttrpc client would wait for the rest of a frame
 * that never comes. False while either side has sent less than a header.
 */
export function answeredOutsideTtrpc(request: Buffer, answer: Buffer): boolean {
  if (request.length < HEADER_BYTES || answer.length < HEADER_BYTES) return false;
  return opensWithFrame(request, [MessageType.request]) && !opensWithFrame(answer, KNOWN_TYPES);
}

/** Reassembles frames from a byte stream cut anywhere; copies each frame's bytes at most once. */
export class FrameReader {
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  #header: FrameHeader | undefined;
  #skipping = 0;

  constructor(private readonly maxDataBytes = MAX_DATA_BYTES) {}

  push(chunk: Buffer): ReadEvent[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const events: ReadEvent[] = [];
    for (;;) {
      if (this.#skipping > 0) {
        const skipped = Math.min(this.#skipping, this.#buffered);
        this.#take(skipped);
        this.#skipping -= skipped;
        if (this.#skipping > 0) return events;
      }
      if (!this.#header) {
        if (this.#buffered < HEADER_BYTES) return events;
        const header = decodeHeader(this.#take(HEADER_BYTES));
        if (header.length > this.maxDataBytes) {
          events.push({ kind: "oversize", ...header });
          this.#skipping = header.length;
          continue;
        }
        this.#header = header;
      }
      if (this.#buffered < this.#header.length) return events;
      events.push({ kind: "frame", ...this.#header, data: this.#take(this.#header.length) });
      this.#header = undefined;
    }
  }

  /** Removes and returns the next `n` buffered bytes (n ≤ buffered). */
  #take(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}
