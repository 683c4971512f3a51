import { mkdir, rm } from "node:fs/promises";
import { connect, createServer, type NetConnectOpts, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "../log/logger.js";

/** Parses `Instance.agentEndpoint` (`unix:/path` or `tcp:host:port`) into connect options. */
export function parseAgentEndpoint(endpoint: string): NetConnectOpts {
  if (endpoint.startsWith("unix:")) {
    const path = endpoint.slice("unix:".length);
    if (path.startsWith("/")) return { path };
  }
  const tcp = /^tcp:(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(endpoint);
  const port = Number(tcp?.[2]);
  if (tcp && port >= 1 && port <= 65535) return { host: tcp[1]!.replace(/^\[|\]$/g, ""), port };
  throw new Error(`agent endpoint ${JSON.stringify(endpoint)} is neither unix:/absolute/path nor tcp:host:port`);
}

/** Resolves true once a connection to the endpoint opens within `timeoutMs`, false otherwise. */
export function probeEndpoint(endpoint: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ ...parseAgentEndpoint(endpoint), timeout: timeoutMs });
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => finish(true));
    socket.once("timeout", () => finish(false));
    socket.once("error", () => finish(false));
  });
}

export interface ForwarderOptions {
  /** The unix socket the Kata shim connects to. */
  path: string;
  /** Where the VM's agent listens now; called for every connection (the VM may still be booting). */
  endpoint: () => Promise<string>;
  log: Logger;
  /** Told +1 / -1 as forwarded connections open and close. */
  onConnections?: (delta: number) => void;
}

export interface Forwarder {
  close(): Promise<void>;
}

/** Forwards every connection to `path`, byte for byte in both directions, to the VM's agent endpoint. */
export async function startForwarder(options: ForwarderOptions): Promise<Forwarder> {
  const { log } = options;
  const open = new Set<Socket>();
  // Half-open on both sides, so a shim that closes its write side still gets the agent's last bytes.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    open.add(client);
    options.onConnections?.(1);
    let agent: Socket | undefined;
    client.once("close", () => {
      open.delete(client);
      options.onConnections?.(-1);
      agent?.destroy();
    });
    client.on("error", (error) => log.debug({ err: error }, "agent socket client error"));
    client.pause();
    options.endpoint().then(
      (endpoint) => {
        if (client.destroyed) return;
        agent = connect({ ...parseAgentEndpoint(endpoint), allowHalfOpen: true });
        agent.once("connect", () => {
          client.pipe(agent!);
          agent!.pipe(client);
          client.resume();
        });
        agent.once("error", (error) => {
          log.warn({ err: error, endpoint }, "could not reach the VM's agent");
          client.destroy();
        });
        agent.once("close", () => client.destroy());
      },
      (error: unknown) => {
        log.warn({ err: error }, "no agent endpoint for this sandbox");
        client.destroy();
      },
    );
  });
  await mkdir(dirname(options.path), { recursive: true });
  await rm(options.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of open) socket.destroy();
      await closed;
      await rm(options.path, { force: true });
    },
  };
}
