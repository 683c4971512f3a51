/**
 * Preloaded (`node --import`) into a benchmarked server: samples its event-loop delay and times each
 * HTTP request from its parsed headers to its answer handed to the socket (Node's diagnostics
 * channels), and on SIGUSR2 writes the percentiles since the previous SIGUSR2 to
 * $PEERPODS_PERF_PROBE_FILE and starts over. lib/server-probe.ts sends the signals around each
 * measured row. Plain JavaScript, so the server under test loads no TypeScript loader (whose thread
 * would share its core).
 */
import { subscribe } from "node:diagnostics_channel";
import { writeFileSync } from "node:fs";
import { createHistogram, monitorEventLoopDelay, performance } from "node:perf_hooks";
import process from "node:process";

const file = process.env.PEERPODS_PERF_PROBE_FILE;
if (!file) throw new Error("PEERPODS_PERF_PROBE_FILE is not set");
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const requests = createHistogram();
const started = new WeakMap();
subscribe("http.server.request.start", ({ request }) => started.set(request, performance.now()));
subscribe("http.server.response.finish", ({ request }) => {
  const from = started.get(request);
  if (from !== undefined) requests.record(Math.max(1, Math.round((performance.now() - from) * 1e6)));
});

let reads = 0;
process.on("SIGUSR2", () => {
  const ms = (ns) => Number((ns / 1e6).toFixed(2));
  const summary = {
    read: ++reads,
    loop: { p50Ms: ms(loop.percentile(50)), p99Ms: ms(loop.percentile(99)), maxMs: ms(loop.max) },
    requests: { count: requests.count, p50Ms: ms(requests.percentile(50)), p99Ms: ms(requests.percentile(99)), maxMs: ms(requests.max) },
  };
  loop.reset();
  requests.reset();
  writeFileSync(file, JSON.stringify(summary));
});
