import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "../../support/wait.js";
import { REPO } from "./peerpods.js";

/** Event-loop delay of a server over one measured span (percentiles of how late its 1 ms timer ran). */
export interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** `node --import` this with $PEERPODS_PERF_LOOP_DELAY_FILE set, and a LoopDelayProbe reads the server's delay. */
export const LOOP_DELAY_PRELOAD = join(REPO, "e2e/perf/lib/loop-delay-preload.mjs");

/** Reads a preloaded server's delay since the previous read (or since it started) and starts a new span. */
export class LoopDelayProbe {
  private reads = 0;
  constructor(
    private readonly pid: number,
    private readonly file: string,
  ) {}

  async read(): Promise<LoopDelay> {
    const want = ++this.reads;
    process.kill(this.pid, "SIGUSR2");
    const summary = await waitFor(
      async () => {
        const written = JSON.parse(await readFile(this.file, "utf8").catch(() => "{}")) as LoopDelay & { read?: number };
        return written.read === want && written;
      },
      { message: `event-loop delay from process ${this.pid}`, intervalMs: 20 },
    );
    return { p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, maxMs: summary.maxMs };
  }
}
