import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export interface ServeProcess {
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Runs `peerpods serve` from the compiled build, optionally pinned to one CPU with taskset,
 * and resolves once it logs that it serves.
 */
export async function startServe(args: string[], options: { cpu?: number; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Promise<ServeProcess> {
  const command = [process.execPath, ...(options.nodeArgs ?? []), join(REPO, "dist", "main.js"), "serve", ...args];
  const argv = options.cpu === undefined ? command : ["taskset", "-c", String(options.cpu), ...command];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...options.env } });
  await new Promise<void>((resolve, reject) => {
    let buffered = "";
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString();
      if (buffered.includes('"peerpods serving"')) {
        child.stdout!.off("data", onData);
        child.stdout!.resume();
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`peerpods exited with ${code} before serving:\n${buffered.slice(-2000)}`)));
  });
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
