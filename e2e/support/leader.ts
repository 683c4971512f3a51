import type { Peerpods } from "./peerpods.js";

/** peerpods_leader for one Lease as a replica's metrics show it: 1 leading, 0 standing by, NaN when absent. */
export async function leaderGauge(peerpods: Peerpods, lease: "peerpods-worker" | "peerpods-advertiser"): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  const match = new RegExp(`^peerpods_leader\\{lease="${lease}"\\} (\\d+)`, "m").exec(text);
  return match ? Number(match[1]) : NaN;
}
