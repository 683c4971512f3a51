import type { IncomingMessage } from "node:http";
import { HttpError } from "./errors.js";

/**
 * Reads a JSON request body defensively: JSON content type (415), a size cap that stops reading
 * early (413), an empty body (400), and parse errors (400). Parses once.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(contentType)) throw new HttpError(415, `content type must be application/json, got "${contentType.slice(0, 60)}"`);
  const declared = Number(req.headers["content-length"]);
  if (declared > maxBytes) throw new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${maxBytes}`);
  const text = await readText(req, maxBytes);
  if (text.length === 0) throw new HttpError(400, "request body is empty");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `request body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * The body as text, read with plain stream events: an async iterator would cost the webhook a
 * promise and its bookkeeping per chunk at every admission. Past `maxBytes` it stops collecting and
 * leaves the rest to be drained while the 413 goes out.
 */
function readText(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (error?: Error): void => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
      if (error) reject(error);
      else resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, size).toString("utf8"));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) finish(new HttpError(413, `request body exceeds the limit of ${maxBytes} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish();
    const onError = (error: Error): void => finish(new HttpError(400, `request body could not be read: ${error.message}`));
    const onClose = (): void => finish(new HttpError(400, "the connection closed before the request body ended"));
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}
