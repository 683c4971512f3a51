import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "../../support/wait.js";
import { REPO } from "./peerpods.js";

export interface Percentiles {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A server's view of one measured span: how late its 1 ms timer ran, and its requests from parsed headers to answer written. */
export interface ServerSpan {
  loop: Percentiles;
  requests: Percentiles & { count: number };
}

/** `node --import` this with $PEERPODS_PERF_PROBE_FILE set, and a ServerProbe reads the server's span. */
export const SERVER_PROBE_PRELOAD = join(REPO, "e2e/perf/lib/server-probe-preload.mjs");

/** Reads a preloaded server's span since the previous read (or since it started) and starts a new one. */
export class ServerProbe {
  private reads = 0;
  constructor(
    private readonly pid: number,
    private readonly file: string,
  ) {}

  async read(): Promise<ServerSpan> {
    const want = ++this.reads;
    process.kill(this.pid, "SIGUSR2");
    const summary = await waitFor(
      async () => {
        const written = JSON.parse(await readFile(this.file, "utf8").catch(() => "{}")) as ServerSpan & { read?: number };
        return written.read === want && written;
      },
      { message: `the probe's numbers from process ${this.pid}`, intervalMs: 20 },
    );
    return { loop: summary.loop, requests: summary.requests };
  }
}
