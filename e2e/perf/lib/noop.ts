import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startProcess, type ManagedProcess } from "../../cluster/process.js";
import { freePorts } from "../../support/ports.js";
import { waitFor } from "../../support/wait.js";
import { REPO } from "./peerpods.js";

export interface NoopServer {
  url: string;
  process: ManagedProcess;
}

/** Starts e2e/perf/noop-server.ts (the do-nothing baseline) with the given pair, optionally pinned to one CPU; `nodeArgs` follow tsx's --import. */
export async function startNoopServer(options: { dir: string; certFile: string; keyFile: string; cpu?: number; nodeArgs?: string[]; env?: NodeJS.ProcessEnv }): Promise<NoopServer> {
  const [port] = (await freePorts(1)) as [number];
  const server = [process.execPath, "--import", "tsx", ...(options.nodeArgs ?? []), join(REPO, "e2e/perf/noop-server.ts"), String(port), options.certFile, options.keyFile];
  const argv = options.cpu === undefined ? server : ["taskset", "-c", String(options.cpu), ...server];
  const logFile = join(options.dir, "noop-server.log");
  const started = startProcess({ name: "noop-server", command: argv[0]!, args: argv.slice(1), logFile, cwd: REPO, env: options.env });
  await waitFor(async () => (await readFile(logFile, "utf8")).includes("listening"), { message: "the no-op server" });
  return { url: `https://127.0.0.1:${port}`, process: started };
}
