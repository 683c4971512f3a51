/**
 * Mocha root hooks for the e2e suite: ONE local cluster for the whole run, stopped at the end;
 * when a test fails, the tails of the control plane's and peerpods' logs are printed under it.
 * At the end, qemu VMs that failed suites left running under this run's folders are stopped.
 */
import type { Context } from "mocha";
import { startCluster, type Cluster } from "./cluster/cluster.js";
import { tail } from "./cluster/process.js";
import { removeLeftoverBridges, stopLeftoverVms } from "./support/leftovers.js";
import { peerpodsStartedSince, runningPeerpods } from "./support/peerpods.js";

let current: Cluster | undefined;
let testStarted = 0;

/** The run's cluster (started before the first test). */
export function cluster(): Cluster {
  if (!current) throw new Error("the e2e cluster is not running (e2e/setup.ts must be loaded by mocha's --require)");
  return current;
}

const LOG_LINES = 30;

function failureReport(): string {
  const sections = Object.entries(current?.logFiles() ?? {}).map(([name, file]) => `--- ${name}: ${file}\n${tail(file, LOG_LINES)}`);
  const peerpodsOfTheTest = new Set([...runningPeerpods(), ...peerpodsStartedSince(testStarted)]);
  for (const peerpods of peerpodsOfTheTest) sections.push(`--- peerpods: ${peerpods.logFile}\n${tail(peerpods.logFile, LOG_LINES)}`);
  return sections.join("\n");
}

export const mochaHooks = {
  async beforeAll(this: Context): Promise<void> {
    this.timeout(120_000);
    const started = Date.now();
    current = await startCluster();
    console.log(`  local cluster ${current.server} up in ${((Date.now() - started) / 1000).toFixed(1)}s (data in ${current.dataDir})`);
  },
  beforeEach(): void {
    testStarted = Date.now();
  },
  afterEach(this: Context): void {
    if (this.currentTest?.state === "failed") console.error(`\n  logs around the failure of "${this.currentTest.fullTitle()}":\n${failureReport()}\n`);
  },
  async afterAll(this: Context): Promise<void> {
    this.timeout(60_000);
    await Promise.all(runningPeerpods().map((peerpods) => peerpods.kill()));
    try {
      const leftovers = await stopLeftoverVms();
      if (leftovers.length > 0) console.error(`  e2e: stopped ${leftovers.length} qemu VMs left behind by failed suites: ${leftovers.map((vm) => vm.dir).join(", ")}`);
      const bridges = removeLeftoverBridges();
      if (bridges.length > 0) console.error(`  e2e: removed qemu VPC bridges left behind by failed suites: ${bridges.join(", ")}`);
    } finally {
      await current?.stop();
      current = undefined;
    }
  },
};
