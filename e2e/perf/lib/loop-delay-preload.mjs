/**
 * Preloaded (`node --import`) into a benchmarked server: samples its event-loop delay and, on
 * SIGUSR2, writes the percentiles since the previous SIGUSR2 to $PEERPODS_PERF_LOOP_DELAY_FILE and
 * starts over. lib/loop-delay.ts sends the signals around each measured row. Plain JavaScript, so the server
 * under test loads no TypeScript loader (whose thread would share its core).
 */
import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import process from "node:process";

const file = process.env.PEERPODS_PERF_LOOP_DELAY_FILE;
if (!file) throw new Error("PEERPODS_PERF_LOOP_DELAY_FILE is not set");
const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
let reads = 0;
process.on("SIGUSR2", () => {
  const ms = (ns) => Number((ns / 1e6).toFixed(2));
  const summary = { read: ++reads, p50Ms: ms(histogram.percentile(50)), p99Ms: ms(histogram.percentile(99)), maxMs: ms(histogram.max), samples: histogram.count };
  histogram.reset();
  writeFileSync(file, JSON.stringify(summary));
});
