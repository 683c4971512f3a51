import type { Peerpods } from "../../support/peerpods.js";

/** Idle warm-pool VMs of one instance type, from peerpods' own gauge. */
export async function idlePoolVms(peerpods: Peerpods, instanceType: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`peerpods_warm_pool_vms{instance_type="${instanceType}",state="idle"} `));
  return Number(line?.split(" ")[1] ?? 0);
}
