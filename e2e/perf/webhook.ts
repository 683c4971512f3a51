/**
 * Webhook benchmark: HTTPS AdmissionReview load on loopback against `peerpods serve --parts webhook`
 * pinned to one core, load generated from the other core. Reports req/s, latency percentiles,
 * CPU and RSS of the peerpods process at several concurrency levels, then p99 at a steady 1,000 req/s
 * (open loop, evenly spaced: lib/paced.ts). For the paced row it also reads peerpods' own histogram,
 * which tells the server's share of the latency from the load generator's.
 */
import autocannon from "autocannon";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCerts } from "../../src/certs/generate.js";
import { admissionReview } from "./fixtures/pod.js";
import { freePorts } from "../support/ports.js";
import { REPO, startServe } from "./lib/peerpods.js";
import { startNoopServer } from "./lib/noop.js";
import { pacedLoad } from "./lib/paced.js";
import { cpuShare, sampleProcess } from "./lib/proc.js";
import { printTable, writeResults, type Row } from "./lib/report.js";

const DURATION_S = Number(process.env.BENCH_DURATION ?? 8);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? "1,16,64").split(",").map(Number);
const WARM_UP_S = 3;

async function load(url: string, ca: string, body: string, connections: number) {
  return autocannon({
    url: `${url}/mutate?timeout=10s`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections,
    duration: DURATION_S,
    tlsOptions: { ca },
  });
}

async function main(): Promise<void> {
  execFileSync("npm", ["run", "-s", "build"], { cwd: REPO, stdio: "inherit" });
  const dir = await mkdtemp(join(tmpdir(), "peerpods-bench-"));
  const certs = await ensureCerts({ outDir: dir, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 1, force: true });
  const ca = await readFile(certs.files.ca, "utf8");
  const [port, metricsPort] = (await freePorts(2)) as [number, number];
  const serving = await startServe(
    ["--parts", "webhook", "--policy-file", "/dev/null", "--tls-cert", certs.files.cert, "--tls-key", certs.files.key, "--webhook-port", String(port), "--metrics-port", String(metricsPort), "--bind-address", "127.0.0.1"],
    { cpu: 0, logFile: join(dir, "peerpods.log") },
  );
  // the load generator keeps to the other core, so the two never queue behind each other
  execFileSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" });
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const url = `https://127.0.0.1:${port}`;
  const body = JSON.stringify(admissionReview());
  const rows: Row[] = [];
  let serverSide: Record<string, number> | undefined;
  try {
    await load(url, ca, body, 8);
    const pid = serving.child.pid!;
    for (const connections of CONNECTIONS) rows.push(await measure(pid, `${connections} conn`, async () => fromAutocannon(await load(url, ca, body, connections))));
    await paced(url, ca, body, WARM_UP_S);
    const before = await admissionBuckets(metricsUrl);
    rows.push(await measure(pid, "1000 req/s paced", () => paced(url, ca, body, DURATION_S)));
    serverSide = shareWithin(before, await admissionBuckets(metricsUrl));
    // core 0 goes to the baseline server next
    await serving.stop();
    rows.push(await pacedAgainstNoop(dir, certs.files, ca, body));
  } finally {
    await serving.stop();
    await rm(dir, { recursive: true, force: true });
  }
  printTable(`webhook: ${body.length}-byte AdmissionReview (3 containers + 1 init), peerpods on 1 core, ${DURATION_S} s per row`, rows);
  console.log(`paced row, server side (peerpods_admission_duration_seconds): ${Object.entries(serverSide ?? {}).map(([le, share]) => `${(share * 100).toFixed(2)} % within ${le} s`).join(", ")}`);
  await writeResults("webhook", { bodyBytes: body.length, durationSeconds: DURATION_S, rows, pacedServerSideShareWithinSeconds: serverSide, targets: { reqPerSecOneCore: 3500, p99MsAt1000: 5 } });
}

/** The steady load at 1,000 req/s; each measured window follows an unmeasured one at the same rate, after the saturating rows. */
const paced = (url: string, ca: string, body: string, durationS: number) => pacedLoad({ url: `${url}/mutate?timeout=10s`, ca, body, rate: 1000, durationS, sockets: 16 });

/** The paced row against a server that admits without looking (same TLS, same core): what the round trip alone costs. */
async function pacedAgainstNoop(dir: string, files: { cert: string; key: string }, ca: string, body: string): Promise<Row> {
  const noop = await startNoopServer({ dir, certFile: files.cert, keyFile: files.key, cpu: 0 });
  try {
    await paced(noop.url, ca, body, WARM_UP_S);
    return await measure(noop.process.child.pid!, "1000 req/s paced, no-op server", () => paced(noop.url, ca, body, DURATION_S));
  } finally {
    await noop.process.stop();
  }
}

/** Cumulative bucket counts of the admission histogram, by upper bound. */
async function admissionBuckets(metricsUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const buckets = new Map<string, number>();
  for (const match of text.matchAll(/^peerpods_admission_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) buckets.set(match[1]!, Number(match[2]));
  return buckets;
}

/** The share of the requests between two scrapes answered within each bound. */
function shareWithin(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const delta = (le: string): number => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const total = delta("+Inf");
  const shares: Record<string, number> = {};
  for (const le of ["0.001", "0.0025", "0.005", "0.01"]) shares[le] = total > 0 ? Number((delta(le) / total).toFixed(5)) : 0;
  return shares;
}

interface Outcome {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  errors: number;
}

/** One table row: the load's outcome with peerpods' CPU share and RSS over the same span. */
async function measure(pid: number, label: string, run: () => Promise<Outcome>): Promise<Row> {
  const before = await sampleProcess(pid);
  const outcome = await run();
  const after = await sampleProcess(pid);
  const cores = cpuShare(before, after);
  return {
    load: label,
    "req/s": Math.round(outcome.reqPerSec),
    "p50 ms": Number(outcome.p50Ms.toFixed(2)),
    "p99 ms": Number(outcome.p99Ms.toFixed(2)),
    "p99.9 ms": Number(outcome.p999Ms.toFixed(2)),
    errors: outcome.errors,
    "cpu (cores)": Number(cores.toFixed(2)),
    "req/s per core": Math.round(outcome.reqPerSec / cores),
    "rss MiB": Math.round(after.rssMiB),
  };
}

const fromAutocannon = (result: autocannon.Result): Outcome => ({
  reqPerSec: result.requests.average,
  p50Ms: result.latency.p50,
  p99Ms: result.latency.p99,
  p999Ms: result.latency.p99_9,
  errors: result.errors + result.non2xx + result.timeouts,
});

await main();
