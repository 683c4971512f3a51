import type { Latency } from "./settings.js";

/** A uniform random source in [0, 1). */
export type Random = () => number;

/** mulberry32: small, fast, seedable; good enough for simulated faults. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** z-score of the 99th percentile of the standard normal distribution. */
const Z99 = 2.3263478740408408;

/** One draw from a latency: the fixed value, or log-normal with the given median and p99. */
export function sampleLatency(latency: Latency, random: Random): number {
  if (typeof latency === "number") return latency;
  if (latency.median === 0 || latency.p99 === latency.median) return latency.median;
  const sigma = Math.log(latency.p99 / latency.median) / Z99;
  return latency.median * Math.exp(sigma * standardNormal(random));
}

/** Box–Muller. */
function standardNormal(random: Random): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
