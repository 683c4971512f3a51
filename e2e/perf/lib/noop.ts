import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { buildStamped, goBuild, goVersion, hashFiles } from "../../cluster/build-steps.js";
import { cacheDir } from "../../cluster/paths.js";
import { startProcess, type ManagedProcess } from "../../cluster/process.js";
import { freePorts } from "../../support/ports.js";
import { waitFor } from "../../support/wait.js";
import { REPO } from "./peerpods.js";
import { onCpu } from "./proc.js";

export interface NoopServer {
  url: string;
  process: ManagedProcess;
}

/** Starts e2e/perf/noop-server.ts (the do-nothing baseline) with the given pair, optionally pinned to one CPU; `nodeArgs` follow tsx's --import. */
export async function startNoopServer(options: { dir: string; certFile: string; keyFile: string; cpu?: number; nodeArgs?: string[]; env?: NodeJS.ProcessEnv }): Promise<NoopServer> {
  const [port] = (await freePorts(1)) as [number];
  const server = [process.execPath, "--import", "tsx", ...(options.nodeArgs ?? []), join(REPO, "e2e/perf/noop-server.ts"), String(port), options.certFile, options.keyFile];
  const argv = onCpu(server, options.cpu);
  const logFile = join(options.dir, "noop-server.log");
  const started = startProcess({ name: "noop-server", command: argv[0]!, args: argv.slice(1), logFile, cwd: REPO, env: options.env });
  await waitFor(async () => (await readFile(logFile, "utf8")).includes("listening"), { message: "the no-op server" });
  return { url: `https://127.0.0.1:${port}`, process: started };
}

const GO_MODULE_DIR = join(REPO, "src/runtime");
const GO_NOOP_PACKAGE = "./perf/noopserver";

/** Builds the Go no-op server (src/runtime/perf/noopserver) into the cache folder unless a build of the same source is there. */
export async function buildGoNoopServer(): Promise<string> {
  const dir = join(cacheDir(), "perf-noopserver");
  const binary = join(dir, "noopserver");
  await buildStamped({
    title: "Go no-op server",
    dir,
    key: await hashFiles([await goVersion()], [join(GO_MODULE_DIR, GO_NOOP_PACKAGE, "main.go")]),
    outputs: [binary],
    build: () => goBuild("go build noopserver", GO_MODULE_DIR, GO_NOOP_PACKAGE, binary, ["-ldflags", "-s -w"], { CGO_ENABLED: "0" }),
  });
  return binary;
}

/** Starts the Go no-op server: plain HTTP, or HTTPS (HTTP/1.1, like peerpods) with `tls`; optionally pinned to one CPU. */
export async function startGoNoopServer(options: { binary: string; dir: string; name: string; tls?: { certFile: string; keyFile: string }; cpu?: number }): Promise<NoopServer> {
  const server = [options.binary, "-addr", "127.0.0.1:0", ...(options.tls ? ["-cert", options.tls.certFile, "-key", options.tls.keyFile] : [])];
  const argv = onCpu(server, options.cpu);
  const logFile = join(options.dir, `${options.name}.log`);
  const started = startProcess({ name: options.name, command: argv[0]!, args: argv.slice(1), logFile });
  const url = await waitFor(async () => /listening on (\S+)/.exec(await readFile(logFile, "utf8"))?.[1], { message: `the Go no-op server (${options.name})` });
  return { url, process: started };
}
