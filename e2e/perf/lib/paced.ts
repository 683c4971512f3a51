import { Agent, request } from "node:https";
import { performance } from "node:perf_hooks";
import { percentile } from "./report.js";

export interface PacedOptions {
  url: string;
  ca: string;
  body: string;
  /** Requests per second, sent evenly spaced whatever the answers do (open loop). */
  rate: number;
  durationS: number;
  /** Keep-alive connections to spread the requests over. */
  sockets: number;
}

export interface PacedResult {
  sent: number;
  errors: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

/**
 * POSTs at a fixed rate and times each request from when it was due, so queueing behind a slow
 * answer counts. autocannon's rate limit sends each second's quota in one burst and corrects for
 * coordinated omission with a 1 ms interval, which turns that burst into a p99 that no steady
 * 1,000 req/s load sees.
 */
export async function pacedLoad(options: PacedOptions): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.sockets, ca: options.ca });
  const total = Math.round(options.rate * options.durationS);
  const intervalMs = 1000 / options.rate;
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const start = performance.now();
  const send = (due: number): Promise<void> =>
    new Promise((resolve) => {
      const req = request(options.url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(options.body) } }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) latencies.push(performance.now() - due);
          else errors += 1;
          resolve();
        });
      });
      req.on("error", () => {
        errors += 1;
        resolve();
      });
      req.end(options.body);
    });
  const inflight: Promise<void>[] = [];
  while (sent < total) {
    const now = performance.now();
    while (sent < total && start + sent * intervalMs <= now) inflight.push(send(start + sent++ * intervalMs));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inflight);
  const elapsedS = (performance.now() - start) / 1000;
  agent.destroy();
  return {
    sent,
    errors,
    reqPerSec: latencies.length / elapsedS,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    p999Ms: percentile(latencies, 99.9),
  };
}
