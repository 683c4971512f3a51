import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { onCpu } from "./proc.js";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export interface ServeProcess {
  child: ChildProcess;
  /** Where peerpods' log goes. */
  logFile: string;
  stop(): Promise<void>;
}

/**
 * Runs `peerpods serve` from the compiled build, optionally pinned to one CPU with taskset, and
 * resolves once it logs that it serves. The log goes straight to `logFile`: piped to this process,
 * a log line per request would cost the load generator CPU, and a full pipe would stall peerpods'
 * synchronous log writes in the middle of the measurement.
 */
export async function startServe(args: string[], options: { logFile: string; cpu?: number; env?: NodeJS.ProcessEnv; nodeArgs?: string[] }): Promise<ServeProcess> {
  const command = [process.execPath, ...(options.nodeArgs ?? []), join(REPO, "dist", "main.js"), "serve", ...args];
  const argv = onCpu(command, options.cpu);
  const { logFile } = options;
  const log = openSync(logFile, "w");
  const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO, stdio: ["ignore", log, "inherit"], env: { ...process.env, ...options.env } });
  closeSync(log);
  const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`peerpods exited with ${code} before serving:\n${readFileSync(logFile, "utf8").slice(-2000)}`))));
  exited.catch(() => undefined);
  try {
    await Promise.race([exited, waitForLine(logFile, '"peerpods serving"')]);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    child,
    logFile,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await gone;
    },
  };
}

/** Needs the info level: a quieter --log-level never writes the line and ends here after `timeoutMs`. */
async function waitForLine(file: string, text: string, timeoutMs = 60_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !readFileSync(file, "utf8").includes(text); ) {
    if (Date.now() > end) throw new Error(`peerpods did not log ${text} within ${timeoutMs / 1000} s (see ${file})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
