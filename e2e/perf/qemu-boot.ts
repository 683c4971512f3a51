/**
 * `npm run perf:qemu`: boot-to-ready time of real pod VMs through the qemu provider — create()
 * until the agent in the VM has reported ready — over 10 boots one after another and 10 boots
 * four at a time, with the accelerator the probe chose. Results go to e2e/perf/results/qemu-boot.json.
 */
import { readFile, rm } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { QemuProvider } from "../../src/providers/qemu/provider.js";
import { parseQemuSettings } from "../../src/providers/qemu/settings.js";
import { parseAgentStatus } from "../../src/providers/qemu/state.js";
import { TAG } from "../../src/providers/types.js";
import { median, percentile, printTable, writeResults, type Row, runBenchmark } from "./lib/report.js";
import { trackedTempDir } from "../support/leftovers.js";

const BOOTS = Number(process.env.BOOTS ?? 10);
const READY_TIMEOUT_MS = 180_000;
const SMALL = { name: "small", vcpus: 1, memoryMiB: 512, gpus: 0 };

interface Boot {
  wallMs: number;
  guestMs: number;
}

async function bootOnce(provider: QemuProvider, stateDir: string, n: number): Promise<Boot> {
  const started = performance.now();
  const { id } = await provider.create({ name: `perf-${n}`, instanceType: SMALL, userData: "{}", tags: { [TAG.cluster]: "perf", [TAG.podUid]: `perf-${n}` } });
  try {
    await provider.waitUntilReady(id, READY_TIMEOUT_MS, 20);
    const wallMs = performance.now() - started;
    const guestMs = parseAgentStatus(await readFile(join(stateDir, "qemu", id, "status.log"), "utf8")).bootMs ?? NaN;
    return { wallMs, guestMs };
  } finally {
    await provider.delete(id);
  }
}

/** `count` boots, at most `concurrency` at a time. */
async function run(provider: QemuProvider, stateDir: string, count: number, concurrency: number, first: number): Promise<Boot[]> {
  const boots: Boot[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = first + next++;
      const boot = await bootOnce(provider, stateDir, n);
      boots.push(boot);
      process.stdout.write(`  boot ${boots.length}/${count}: ${(boot.wallMs / 1000).toFixed(2)} s wall, ${(boot.guestMs / 1000).toFixed(2)} s guest\n`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return boots;
}

function summary(mode: string, concurrency: number, boots: Boot[]): Row {
  const wall = boots.map((b) => b.wallMs);
  const guest = boots.map((b) => b.guestMs);
  return {
    mode,
    concurrency,
    boots: boots.length,
    wallMedianMs: Math.round(median(wall)),
    wallP99Ms: Math.round(percentile(wall, 99)),
    wallMinMs: Math.round(Math.min(...wall)),
    guestMedianMs: Math.round(median(guest)),
    guestP99Ms: Math.round(percentile(guest, 99)),
  };
}

async function main(): Promise<void> {
  const stateDir = trackedTempDir("pp-qemu-perf-");
  const provider = new QemuProvider(parseQemuSettings({ maxVMs: 8 }), { stateDir, log: pino({ level: "warn" }) });
  try {
    const probeStarted = Date.now();
    const platform = await provider.platform();
    console.log(`probe: ${platform.accelerator}/${platform.machine} in ${((Date.now() - probeStarted) / 1000).toFixed(1)} s`);
    const loadBefore = loadavg()[0]!;
    console.log(`sequential, ${BOOTS} boots`);
    const sequential = await run(provider, stateDir, BOOTS, 1, 0);
    console.log(`4 at a time, ${BOOTS} boots`);
    const parallel = await run(provider, stateDir, BOOTS, 4, BOOTS);
    const rows = [summary("sequential", 1, sequential), summary("parallel", 4, parallel)];
    printTable(`qemu boot-to-ready, ${platform.accelerator}/${platform.machine}, ${SMALL.vcpus} vCPU ${SMALL.memoryMiB} MiB`, rows);
    await writeResults("qemu-boot", { ...platform, vm: SMALL, loadAverageBefore: loadBefore, loadAverageAfter: loadavg()[0], summary: rows, boots: { sequential, parallel } });
  } finally {
    for (const instance of await provider.list({})) await provider.delete(instance.id);
    await rm(stateDir, { recursive: true, force: true });
  }
}

runBenchmark(main);
