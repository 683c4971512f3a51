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
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, `request body exceeds the limit of ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) throw new HttpError(400, "request body is empty");
  const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, size).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `request body is not valid JSON: ${(error as Error).message}`);
  }
}
