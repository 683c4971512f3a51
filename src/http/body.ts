import type { IncomingMessage } from "node:http";
import { HttpError } from "./errors.js";

/**
 * Reads a JSON request body defensively: JSON content type (415), a size cap that stops reading
 * early (413), an empty body (400), a body cut short (400) and parse errors (400). Parses once.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return parseJson(await readJsonText(req, maxBytes));
}

/**
 * The text of a JSON request body, unparsed: the checks of `readJsonBody` but the parse. Listens to
 * the stream's events rather than iterating it: an async iterator costs a promise and its
 * bookkeeping per chunk, more than the small bodies' parse. Past `maxBytes` it stops collecting and
 * leaves the rest to be drained while the 413 goes out.
 */
export function readJsonText(req: IncomingMessage, maxBytes: number): Promise<string> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(contentType)) return Promise.reject(new HttpError(415, `content type must be application/json, got "${contentType.slice(0, 60)}"`));
  const declared = Number(req.headers["content-length"]);
  if (declared > maxBytes) return Promise.reject(new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${maxBytes}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error: Error | undefined, text?: string): void => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
      if (error) reject(error);
      else resolve(text!);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else settle(new HttpError(413, `request body exceeds the limit of ${maxBytes} bytes`));
    };
    const onEnd = (): void => {
      if (size === 0) settle(new HttpError(400, "request body is empty"));
      else settle(undefined, chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, size).toString("utf8"));
    };
    const onError = (error: Error): void => settle(new HttpError(400, `request body could not be read: ${error.message}`));
    const onClose = (): void => settle(new HttpError(400, "the connection closed before the request body ended"));
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

/** JSON.parse whose failure is a 400. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `request body is not valid JSON: ${(error as Error).message}`);
  }
}
