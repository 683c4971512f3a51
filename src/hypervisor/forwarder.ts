import { mkdir, rm } from "node:fs/promises";
import { connect, createServer, type NetConnectOpts, type Socket } from "node:net";
import { dirname } from "node:path";
import { connect as connectTls } from "node:tls";
import type { AgentTarget } from "../agent-tls/target.js";
import type { Logger } from "../log/logger.js";
import { agentTlsRefusals } from "../metrics/agent-tls.js";
import { answeredOutsideTtrpc, HEADER_BYTES } from "./framing.js";

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

/** A connection to the agent, over TLS when the target has it; `ready` is the event that says it is open. */
export function connectAgent(target: AgentTarget, options: { allowHalfOpen?: boolean; timeout?: number } = {}): { socket: Socket; ready: "connect" | "secureConnect" } {
  const where = { ...parseAgentEndpoint(target.endpoint), ...options };
  if (!target.tls) return { socket: connect(where), ready: "connect" };
  return { socket: connectTls({ ...target.tls, ...where }), ready: "secureConnect" };
}

/** Errors of a connection that may have met nothing behind a forwarded port yet; any other TLS error is the agent or the node refusing the other. */
const TRANSIENT = new Set(["ECONNRESET", "EPIPE", "ECONNREFUSED", "ETIMEDOUT"]);

export function refusedTls(target: AgentTarget, error: NodeJS.ErrnoException): boolean {
  return target.tls !== undefined && !TRANSIENT.has(error.code ?? "");
}

/**
 * Resolves true once a connection to the agent opens and stays open for `holdMs` (a forwarded port
 * may accept and then reset when nothing listens behind it), false otherwise. Over TLS no hold is
 * needed: a forwarded port alone cannot finish a handshake, so the agent itself answered. (An agent
 * that refuses the node's certificate says so just after the handshake; the forwarder reports that
 * on the shim's first connection, as an AgentTLSRefused Event, instead of StartVM waiting it out.)
 */
export function probeEndpoint(target: AgentTarget, timeoutMs: number, holdMs = 250): Promise<boolean> {
  return new Promise((resolve) => {
    const { socket, ready } = connectAgent(target, { timeout: timeoutMs });
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(ok);
    };
    socket.once(ready, () => setTimeout(() => finish(true), target.tls ? 0 : holdMs).unref());
    socket.once("timeout", () => finish(false));
    socket.once("close", () => finish(false));
    socket.on("error", () => finish(false));
  });
}

/** How long a new agent connection must live, or answer, before the shim's bytes count as delivered. */
const SETTLE_MS = 1000;
const MAX_ATTEMPTS = 10;
const RETRY_MS = 100;
/** Past this many unsettled bytes the connection is trusted as it is (nothing more is kept for a replay). */
const MAX_REPLAY_BYTES = 1 << 20;

/**
 * Joins the shim's connection to a new connection to the agent. qemu's user-mode network (and any
 * port forwarder) accepts on the host before the guest has taken the connection, and resets it when
 * nothing listens behind it (still booting, or a single-connection agent busy with another). A
 * connection that dies within SETTLE_MS without a byte from the agent never reached it, so the shim's
 * bytes so far are replayed, in order, on a new connection; once settled the two are simply piped.
 * An agent whose first answer to the shim's ttrpc request is no ttrpc frame speaks another protocol:
 * both connections are closed at once (the shim's call fails now instead of waiting for a frame that
 * never comes) and `onForeignAgent` is told what it answered.
 */
function bridge(client: Socket, target: AgentTarget, log: Logger, told: Pick<ForwarderOptions, "onForeignAgent" | "onRefused">): void {
  const { onForeignAgent } = told;
  const early: Buffer[] = [];
  let earlyBytes = 0;
  let clientEnded = false;
  let settled = false;
  let attempts = 0;
  let agent: Socket;
  let refused = false;
  let timer: NodeJS.Timeout | undefined;

  const settle = (): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    early.length = 0;
    client.off("data", onClientData);
    client.off("end", onClientEnd);
    agent.off("data", onFirstAgentData);
    agent.pipe(client);
    if (!clientEnded) client.pipe(agent);
  };
  const onClientData = (chunk: Buffer): void => {
    early.push(chunk);
    earlyBytes += chunk.length;
    agent.write(chunk);
    if (earlyBytes > MAX_REPLAY_BYTES) settle();
  };
  const onClientEnd = (): void => {
    clientEnded = true;
    agent.end();
  };
  const onFirstAgentData = (chunk: Buffer): void => {
    if (onForeignAgent && answeredOutsideTtrpc(Buffer.concat(early, Math.min(earlyBytes, HEADER_BYTES)), chunk)) {
      settled = true;
      clearTimeout(timer);
      client.destroy();
      onForeignAgent(chunk);
      return;
    }
    client.write(chunk);
    settle();
  };
  const attempt = (): void => {
    if (client.destroyed) return; // the shim gave up while a retry was waiting
    attempts++;
    agent = connectAgent(target, { allowHalfOpen: true }).socket;
    for (const chunk of early) agent.write(chunk);
    if (clientEnded) agent.end();
    timer = setTimeout(settle, SETTLE_MS);
    agent.once("data", onFirstAgentData);
    agent.on("error", (error: NodeJS.ErrnoException) => {
      if (refusedTls(target, error) && !refused) {
        refused = true;
        agentTlsRefusals.inc();
        log.warn({ err: error }, "mutual TLS with the VM's agent failed: the connection is closed");
        told.onRefused?.(error);
      } else log.debug({ err: error, attempt: attempts }, "agent connection error");
    });
    agent.once("close", (hadError) => {
      if (!settled && !refused && !client.destroyed && attempts < MAX_ATTEMPTS) {
        clearTimeout(timer);
        setTimeout(attempt, RETRY_MS).unref();
        return;
      }
      if (!settled) log.warn({ attempts }, "could not reach the VM's agent");
      if (hadError || !settled) client.destroy();
    });
  };

  client.once("close", () => {
    clearTimeout(timer);
    agent.destroy();
  });
  attempt();
  client.on("data", onClientData);
  client.on("end", onClientEnd);
  client.resume();
}

export interface ForwarderOptions {
  /** The unix socket the Kata shim connects to. */
  path: string;
  /** Where the VM's agent listens now and the TLS that reaches it; called for every connection (the VM may still be booting). */
  target: () => Promise<AgentTarget>;
  log: Logger;
  /** Told +1 / -1 as forwarded connections open and close. */
  onConnections?: (delta: number) => void;
  /** Told the first bytes of an agent that answered a ttrpc request outside ttrpc (the connection is closed). */
  onForeignAgent?: (answer: Buffer) => void;
  /** Told why mutual TLS with the VM's agent failed (the connection is closed, not retried). */
  onRefused?: (error: Error) => void;
}

export interface Forwarder {
  close(): Promise<void>;
}

/**
 * Forwards every connection to `path`, byte for byte in both directions, to the VM's agent endpoint:
 * the shim's side is a local root-only socket, the VM's side mutual TLS where the target has it.
 */
export async function startForwarder(options: ForwarderOptions): Promise<Forwarder> {
  const { log } = options;
  const open = new Set<Socket>();
  // Half-open on both sides, so a shim that closes its write side still gets the agent's last bytes.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    open.add(client);
    options.onConnections?.(1);
    client.once("close", () => {
      open.delete(client);
      options.onConnections?.(-1);
    });
    client.on("error", (error) => log.debug({ err: error }, "agent socket client error"));
    client.pause();
    options.target().then(
      (target) => {
        if (!client.destroyed) bridge(client, target, log.child({ endpoint: target.endpoint, tls: target.tls !== undefined }), options);
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
