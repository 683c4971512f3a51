/**
 * `npm run perf:agent-tls`: what mutual TLS costs on the agent channel. Two pod VMs of the qemu
 * provider in the same run, one booted with its agent certificate (mutual TLS 1.3) and one without
 * (plain TCP); each behind the hypervisor part's forwarder, as the shim reaches it. For each:
 *   connect+Health: a new connection to the sandbox socket and one Health call (the forwarder opens
 *     a new connection to the VM, with its TLS handshake where there is TLS), CALLS times;
 *   Health: CALLS calls on one open connection (the per-call cost of TLS records).
 * Results go to e2e/perf/results/agent-tls.json.
 */
import { join } from "node:path";
import { pino } from "pino";
import { AgentTlsStore } from "../../src/agent-tls/store.js";
import { agentTarget } from "../../src/agent-tls/target.js";
import { ensureAgentCa } from "../../src/certs/agent.js";
import { startForwarder } from "../../src/hypervisor/forwarder.js";
import { withAgentCertificates } from "../../src/providers/agent-certificates.js";
import { QemuProvider } from "../../src/providers/qemu/provider.js";
import { parseQemuSettings } from "../../src/providers/qemu/settings.js";
import { TAG, type Instance, type Provider } from "../../src/providers/types.js";
import { AgentClient, withAgent } from "../../src/runtime/agent-client.js";
import { trackedTempDir } from "../support/leftovers.js";
import { median, percentile, printTable, writeResults, type Row, runBenchmark } from "./lib/report.js";

const CALLS = Number(process.env.CALLS ?? 50);
const READY_TIMEOUT_MS = 180_000;
const SMALL = { name: "small", vcpus: 1, memoryMiB: 256, gpus: 0 };
const log = pino({ level: "silent" });

async function timed(times: number, call: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await call();
    samples.push(performance.now() - start);
  }
  return samples;
}

const row = (channel: string, what: string, samples: number[]): Row => ({
  channel,
  what,
  calls: samples.length,
  p50Ms: median(samples),
  p90Ms: percentile(samples, 90),
});

/** Boots a VM through `provider`, forwards a sandbox socket to it as the hypervisor part does, and times both kinds of call. */
async function measure(channel: string, provider: Provider, qemu: QemuProvider, agentTls: AgentTlsStore | undefined, dir: string): Promise<Row[]> {
  const name = `perf-${channel.replace(/\W+/g, "-").toLowerCase()}`;
  const created = await provider.create({ name, instanceType: SMALL, userData: "{}", tags: { [TAG.cluster]: "perf", [TAG.podUid]: name } });
  let vm: Instance | undefined;
  try {
    vm = await qemu.waitUntilReady(created.id, READY_TIMEOUT_MS);
    const path = join(dir, name, "agent.ttrpc");
    const ready = vm;
    const forwarder = await startForwarder({ path, target: () => agentTarget(ready.agentEndpoint!, ready.tags, agentTls), log });
    try {
      await withAgent(path, (agent) => agent.health()); // the first call waits for nothing but is not counted
      const connectAndCall = await timed(CALLS, () => withAgent(path, (agent) => agent.health()));
      const agent = await AgentClient.connect({ endpoint: path }, 10_000);
      try {
        const calls = await timed(CALLS, () => agent.health());
        return [row(channel, "connect+Health", connectAndCall), row(channel, "Health", calls)];
      } finally {
        agent.close();
      }
    } finally {
      await forwarder.close();
    }
  } finally {
    await provider.delete(created.id);
  }
}

async function main(): Promise<void> {
  const dir = trackedTempDir("agent-tls-perf-");
  await ensureAgentCa({ outDir: join(dir, "ca"), validDays: 2, force: true });
  const agentTls = new AgentTlsStore(join(dir, "ca"), log);
  const qemu = new QemuProvider(parseQemuSettings({}), { stateDir: join(dir, "state"), log, agentTls });
  try {
    const rows = [...(await measure("mutual TLS", withAgentCertificates(qemu, agentTls), qemu, agentTls, dir)), ...(await measure("plain TCP", qemu, qemu, undefined, dir))];
    printTable(`agent round trips through the forwarder, ${CALLS} calls each (qemu VM, same run)`, rows);
    await writeResults("agent-tls", rows);
  } finally {
    await qemu.close();
  }
}

runBenchmark(main);
