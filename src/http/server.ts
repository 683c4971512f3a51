import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import type { Express } from "express";
import type { Logger } from "../log/logger.js";
import { HttpError } from "./errors.js";
import { readTlsContext, TLS_OPTIONS, watchTlsFiles, type TlsFiles } from "./tls.js";

/** A hot JSON route served without middleware: gets the request, returns the response body text. */
export type FastRoute = (req: IncomingMessage) => Promise<string>;

export interface ServerOptions {
  name: string;
  port: number;
  host: string;
  /** HTTPS when given; plain HTTP (metrics only) otherwise. */
  tls?: TlsFiles;
  /** `POST path` handlers that bypass express. */
  fastRoutes?: Record<string, FastRoute>;
  app: Express;
  log: Logger;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** Stops accepting, waits for in-flight requests up to `graceMs`, then drops what is left. */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { log, fastRoutes = {} } = options;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url?.split("?", 1)[0] ?? "";
    const route = req.method === "POST" ? fastRoutes[path] : undefined;
    if (!route) {
      options.app(req, res);
      return;
    }
    route(req).then(
      (body) => send(res, 200, body),
      (error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (status >= 500) log.error({ err: error, path }, "request failed");
        else log.warn({ path, status, reason: (error as Error).message }, "bad request");
        send(res, status, (error instanceof HttpError && error.body) || JSON.stringify({ error: (error as Error).message }));
        if (status === 413) req.resume();
      },
    );
  };
  const server: Server = options.tls
    ? (createHttpsServer({ ...TLS_OPTIONS, ...readTlsContext(options.tls), requestCert: Boolean(options.tls.clientCaFile), rejectUnauthorized: Boolean(options.tls.clientCaFile) }, handler) as unknown as Server)
    : createHttpServer(handler);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const stopWatch = options.tls
    ? watchTlsFiles(options.tls, (context) => (server as unknown as { setSecureContext(c: object): void }).setSecureContext({ ...TLS_OPTIONS, ...context }), log)
    : () => undefined;

  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("clientError", (error, socket) => {
    log.debug({ err: error, server: options.name }, "client connection error");
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  log.info({ server: options.name, port, host: options.host, tls: Boolean(options.tls) }, "listening");

  return {
    server,
    port,
    close: async (graceMs = 10_000) => {
      stopWatch();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => sockets.forEach((s) => s.destroy()), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
