import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cacheDir } from "../cluster/paths.js";
import { startProcess, tail } from "../cluster/process.js";
import { freePorts } from "./ports.js";
import { waitFor } from "./wait.js";

/** Installed by `npm run moto:setup` (e2e/aws/setup-moto.sh). */
export const motoServerBinary = (): string => join(cacheDir(), "moto-venv", "bin", "moto_server");

/** Credentials moto accepts; any will do, these make it obvious in a log that nothing real is used. */
export const MOTO_CREDENTIALS = { AWS_ACCESS_KEY_ID: "AKIAMOTOTESTING00000", AWS_SECRET_ACCESS_KEY: "moto-testing-secret-not-a-real-key" } as const;

export interface Moto {
  /** `http://127.0.0.1:PORT`, for the SDK's `endpoint`. */
  endpoint: string;
  /** Stops the server and removes its log folder. */
  stop(): Promise<void>;
}

/**
 * Starts a fresh moto_server (an EC2-compatible API with empty state) on a free loopback port.
 * AMI and instance-type validation are on, so bad parameters fail as they do on EC2.
 */
export async function startMoto(env: NodeJS.ProcessEnv = {}): Promise<Moto> {
  const binary = motoServerBinary();
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run \`npm run moto:setup\``);
  const [port] = await freePorts(1);
  const dir = mkdtempSync(join(tmpdir(), "peerpods-moto-"));
  const server = startProcess({
    name: "moto",
    command: binary,
    args: ["-H", "127.0.0.1", "-p", String(port)],
    logFile: join(dir, "moto.log"),
    env: { MOTO_ENABLE_AMI_VALIDATION: "true", MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION: "true", ...env },
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const exitedEarly = server.exited.then((status) => {
    throw new Error(`moto_server exited (${status}) before it answered:\n${tail(server.logFile)}`);
  });
  try {
    await Promise.race([
      waitFor(async () => (await fetch(`${endpoint}/moto-api/data.json`)).ok, { message: `moto_server on ${endpoint}`, timeoutMs: 30_000, intervalMs: 200 }),
      exitedEarly,
    ]);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    endpoint,
    async stop() {
      await server.stop(3000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
