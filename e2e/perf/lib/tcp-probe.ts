/**
 * TCP measurements from whatever network namespace this process runs in (the benchmark starts it
 * in a client pod's with nsenter), printed as one JSON line:
 *   connect HOST PORT N      — N handshakes one after another: ms from connect() to established
 *   refused HOST PORT N      — N connects to a closed port: ms from connect() to the RST (the peer's
 *                              kernel alone answers: no server work in the time)
 *   echo HOST PORT N BYTES   — N round trips of BYTES on one connection to an echo server
 *   send HOST PORT BYTES     — BYTES sent on one connection: ms from connect until the receiver,
 *                              having read everything, closes its side
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";

const TIMEOUT_MS = 60_000;

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`no progress with ${host}:${port} in ${TIMEOUT_MS} ms`)));
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

async function handshakes(host: string, port: number, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const socket = await open(host, port);
    ms.push(performance.now() - started);
    socket.destroy();
  }
  return ms;
}

async function refusals(host: string, port: number, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const error = await open(host, port).then(
      (socket) => {
        socket.destroy();
        return new Error(`${host}:${port} accepted: the port must be closed`);
      },
      (e: NodeJS.ErrnoException) => (e.code === "ECONNREFUSED" ? undefined : e),
    );
    if (error) throw error;
    ms.push(performance.now() - started);
  }
  return ms;
}

async function roundTrips(host: string, port: number, n: number, bytes: number): Promise<number[]> {
  const socket = await open(host, port);
  const message = Buffer.alloc(bytes, "x");
  const ms: number[] = [];
  let pending = 0;
  let answered: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    pending -= chunk.length;
    if (pending <= 0) answered?.();
  });
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    pending = bytes;
    await new Promise<void>((resolve, reject) => {
      answered = resolve;
      socket.once("error", reject);
      socket.write(message);
    });
    ms.push(performance.now() - started);
  }
  socket.destroy();
  return ms;
}

async function send(host: string, port: number, bytes: number): Promise<number> {
  const started = performance.now();
  const socket = await open(host, port);
  const chunk = Buffer.alloc(64 * 1024);
  socket.resume();
  const closed = new Promise<void>((resolve, reject) => {
    socket.once("close", () => resolve());
    socket.once("error", reject);
  });
  const early = closed.then(() => {
    throw new Error(`the receiver at ${host}:${port} closed the connection before it had everything`);
  });
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), early]);
  }
  early.catch(() => undefined);
  socket.end();
  await closed;
  return performance.now() - started;
}

async function main(): Promise<unknown> {
  const [mode, host, port, a, b] = process.argv.slice(2);
  if (!host || !port || !a) throw new Error("usage: tcp-probe connect|echo|send HOST PORT ...");
  if (mode === "connect") return handshakes(host, Number(port), Number(a));
  if (mode === "refused") return refusals(host, Number(port), Number(a));
  if (mode === "echo") return roundTrips(host, Number(port), Number(a), Number(b ?? 64));
  if (mode === "send") return send(host, Number(port), Number(a));
  throw new Error(`unknown mode ${mode}`);
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (error: unknown) => {
    console.error((error as Error).message);
    process.exit(1);
  },
);
