import { readFile } from "node:fs/promises";

const CLOCK_TICKS = 100;

export interface ProcessSample {
  cpuSeconds: number;
  rssMiB: number;
  at: number;
}

/** CPU time used so far and resident memory of a process, from /proc. */
export async function sampleProcess(pid: number): Promise<ProcessSample> {
  const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  const utime = Number(stat[11]);
  const stime = Number(stat[12]);
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuSeconds: (utime + stime) / CLOCK_TICKS, rssMiB: rssKiB / 1024, at: Date.now() };
}

/** Share of one core the process used between two samples. */
export function cpuShare(before: ProcessSample, after: ProcessSample): number {
  return (after.cpuSeconds - before.cpuSeconds) / ((after.at - before.at) / 1000);
}

/** `command` run on one CPU with taskset, or as it is without `cpu`. */
export function onCpu(command: string[], cpu: number | undefined): string[] {
  return cpu === undefined ? command : ["taskset", "-c", String(cpu), ...command];
}
