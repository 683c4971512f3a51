import { readdir, readFile } from "node:fs/promises";

/** Pids of the processes (other than this one) whose command line mentions `text`. */
export async function processesMentioning(text: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((entry) => /^\d+$/.test(entry));
  const matches = await Promise.all(pids.map(async (pid) => ((await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).includes(text) ? Number(pid) : undefined)));
  return matches.filter((pid): pid is number => pid !== undefined && pid !== process.pid);
}
