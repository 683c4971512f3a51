/**
 * Webhook benchmark: HTTPS AdmissionReview load on loopback against `peerpods serve --parts webhook`
 * pinned to one core, load generated from the other core. Reports req/s, latency percentiles,
 * CPU and RSS of the server, its event-loop delay and its own time per request (lib/server-probe.ts) at several concurrency
 * levels, then evenly paced open-loop rows at 1,000 and 2,000 req/s from two generators, Node's
 * (lib/paced.ts) and vegeta (Go, lib/vegeta.ts), against peerpods and then against a do-nothing
 * HTTPS server on the same core, Node's (e2e/perf/noop-server.ts) and Go's (src/runtime/perf/noopserver),
 * so each paced p99 has its baselines from the same run. Each server's
 * own time per request (parsed headers to answer written, p99 and max) beside the client's tells the
 * server's share of the latency from the time a request waits before the server reads it.
 * BENCH_SERVER_NODE_ARGS (e.g. "--trace-gc", "--cpu-prof --cpu-prof-dir=/tmp/prof") go to both
 * servers' node; with --trace-gc each row also counts the V8 pauses of its span. BENCH_KEEP=1 keeps
 * the run's folder (both servers' logs, with the GC trace) in the temporary folder.
 */
import autocannon from "autocannon";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCerts } from "../../src/certs/generate.js";
import { admissionReview } from "./fixtures/pod.js";
import { freePorts } from "../support/ports.js";
import { gcPausesSince } from "./lib/gc-trace.js";
import { SERVER_PROBE_PRELOAD, ServerProbe } from "./lib/server-probe.js";
import { REPO, startServe } from "./lib/peerpods.js";
import { buildGoNoopServer, startGoNoopServer, startNoopServer } from "./lib/noop.js";
import { pacedLoad } from "./lib/paced.js";
import { cpuShare, sampleProcess } from "./lib/proc.js";
import { printTable, writeResults, type Row } from "./lib/report.js";
import { ensureVegeta, vegetaLoad } from "./lib/vegeta.js";

const DURATION_S = Number(process.env.BENCH_DURATION ?? 8);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? "1,16,64").split(",").filter(Boolean).map(Number);
const RATES = [1000, 2000];
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean);
const TRACING_GC = SERVER_NODE_ARGS.includes("--trace-gc");
const WARM_UP_S = 3;
const GO_NOOP = "no-op (Go)";

/** A server under test: where to send, which process to watch, and how to read its event-loop delay. */
interface Target {
  name: string;
  url: string;
  pid: number;
  logFile: string;
  /** Node servers only: the preload's event-loop delay and time per request (and GC trace in the log). */
  probe?: ServerProbe;
}

interface Load {
  ca: string;
  caFile: string;
  body: string;
  dir: string;
  vegeta: string;
}

async function main(): Promise<void> {
  execFileSync("npm", ["run", "-s", "build"], { cwd: REPO, stdio: "inherit" });
  const vegeta = await ensureVegeta();
  const goNoop = await buildGoNoopServer();
  const dir = await mkdtemp(join(tmpdir(), "peerpods-bench-"));
  const certs = await ensureCerts({ outDir: dir, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 1, force: true });
  const load: Load = { ca: await readFile(certs.files.ca, "utf8"), caFile: certs.files.ca, body: JSON.stringify(admissionReview()), dir, vegeta };
  const [port, metricsPort] = (await freePorts(2)) as [number, number];
  const probeFile = join(dir, "peerpods-probe.json");
  const serving = await startServe(
    ["--parts", "webhook", "--policy-file", "/dev/null", "--tls-cert", certs.files.cert, "--tls-key", certs.files.key, "--webhook-port", String(port), "--metrics-port", String(metricsPort), "--bind-address", "127.0.0.1"],
    { cpu: 0, logFile: join(dir, "peerpods.log"), nodeArgs: ["--import", SERVER_PROBE_PRELOAD, ...SERVER_NODE_ARGS], env: { PEERPODS_PERF_PROBE_FILE: probeFile } },
  );
  // the load generators keep to the other core, so they and the server never queue behind each other
  execFileSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" });
  const rows: Row[] = [];
  try {
    const pid = serving.child.pid!;
    const peerpods: Target = { name: "peerpods", url: `https://127.0.0.1:${port}`, pid, logFile: serving.logFile, probe: new ServerProbe(pid, probeFile) };
    await closedLoop(peerpods, load, 8);
    for (const connections of CONNECTIONS) rows.push(await measure(peerpods, `${connections} conn`, () => closedLoop(peerpods, load, connections)));
    rows.push(...(await pacedRows(peerpods, load)));
    // core 0 goes to the baseline server next
    await serving.stop();
    rows.push(...(await pacedAgainstNoop(certs.files, load)));
    rows.push(...(await pacedAgainstGoNoop(goNoop, certs.files, load)));
  } finally {
    await serving.stop();
    if (!process.env.BENCH_KEEP) await rm(dir, { recursive: true, force: true });
  }
  const ratios = p99Ratios(rows);
  printTable(`webhook: ${load.body.length}-byte AdmissionReview (3 containers + 1 init), server on 1 core, ${DURATION_S} s per row${SERVER_NODE_ARGS.length ? `, server node ${SERVER_NODE_ARGS.join(" ")}` : ""}`, rows);
  for (const [baseline, byLoad] of Object.entries(ratios)) console.log(`paced p99, peerpods ÷ ${baseline} in this run: ${Object.entries(byLoad).map(([load, ratio]) => `${load} ${ratio}×`).join(", ")}`);
  await writeResults("webhook", { bodyBytes: load.body.length, durationSeconds: DURATION_S, serverNodeArgs: SERVER_NODE_ARGS, rows, pacedP99PeerpodsOver: ratios, targets: { reqPerSecOneCore: 3500, p99MsAt1000: 5, p99OverNoopAt1000: 2, p999MsAt1000: 20 } });
}

async function closedLoop(target: Target, load: Load, connections: number): Promise<Outcome> {
  const result = await autocannon({
    url: `${target.url}/mutate?timeout=10s`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: load.body,
    connections,
    duration: DURATION_S,
    tlsOptions: { ca: load.ca },
  });
  return { reqPerSec: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99, p999Ms: result.latency.p99_9, errors: result.errors + result.non2xx + result.timeouts };
}

/** Steady open-loop rows at each rate from Node's generator and from vegeta; each measured window follows an unmeasured one. */
async function pacedRows(target: Target, load: Load): Promise<Row[]> {
  const url = `${target.url}/mutate?timeout=10s`;
  const node = (rate: number, durationS: number) => pacedLoad({ url, ca: load.ca, body: load.body, rate, durationS, sockets: 16 });
  const rows: Row[] = [];
  for (const rate of RATES) {
    await node(rate, WARM_UP_S);
    rows.push(await measure(target, `${rate}/s paced, node`, () => node(rate, DURATION_S)));
    rows.push(await measure(target, `${rate}/s paced, vegeta`, () => vegetaLoad({ vegeta: load.vegeta, url, caFile: load.caFile, body: load.body, rate, durationS: DURATION_S, dir: load.dir })));
  }
  return rows;
}

/** The paced rows against a server that admits without looking (same TLS, same core): what the round trip alone costs. */
async function pacedAgainstNoop(files: { cert: string; key: string }, load: Load): Promise<Row[]> {
  const probeFile = join(load.dir, "noop-probe.json");
  const noop = await startNoopServer({ dir: load.dir, certFile: files.cert, keyFile: files.key, cpu: 0, nodeArgs: ["--import", SERVER_PROBE_PRELOAD, ...SERVER_NODE_ARGS], env: { PEERPODS_PERF_PROBE_FILE: probeFile } });
  try {
    const pid = noop.process.child.pid!;
    return await pacedRows({ name: "no-op", url: noop.url, pid, logFile: noop.process.logFile, probe: new ServerProbe(pid, probeFile) }, load);
  } finally {
    await noop.process.stop();
  }
}

/** The same paced rows against the Go no-op server over HTTPS (same core): the round trip without Node's event loop or garbage collector. */
async function pacedAgainstGoNoop(binary: string, tls: { cert: string; key: string }, load: Load): Promise<Row[]> {
  const noop = await startGoNoopServer({ binary, dir: load.dir, name: "noop-go", tls: { certFile: tls.cert, keyFile: tls.key }, cpu: 0 });
  try {
    return await pacedRows({ name: GO_NOOP, url: noop.url, pid: noop.process.child.pid!, logFile: noop.process.logFile }, load);
  } finally {
    await noop.process.stop();
  }
}

/** peerpods' paced p99 over each baseline's, per generator and rate. */
function p99Ratios(rows: Row[]): Record<string, Record<string, number>> {
  const ratios: Record<string, Record<string, number>> = {};
  for (const baseline of ["no-op", GO_NOOP]) {
    for (const row of rows.filter((r) => r.server === "peerpods" && String(r.load).includes("paced"))) {
      const other = rows.find((r) => r.server === baseline && r.load === row.load);
      if (other) (ratios[baseline] ??= {})[String(row.load)] = Number((Number(row["p99 ms"]) / Number(other["p99 ms"])).toFixed(2));
    }
  }
  return ratios;
}

interface Outcome {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  errors: number;
}

/** One table row: the load's outcome with the server's CPU share, RSS, own time per request, event-loop delay (and GC pauses when traced) over the same span. */
async function measure(target: Target, label: string, run: () => Promise<Outcome>): Promise<Row> {
  const logFrom = (await stat(target.logFile)).size;
  await target.probe?.read();
  const before = await sampleProcess(target.pid);
  const outcome = await run();
  const after = await sampleProcess(target.pid);
  const span = await target.probe?.read();
  const cores = cpuShare(before, after);
  const row: Row = {
    server: target.name,
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
  if (span) {
    row["server p99 ms"] = span.requests.p99Ms;
    row["server max ms"] = span.requests.maxMs;
    row["loop p99 ms"] = span.loop.p99Ms;
    row["loop max ms"] = span.loop.maxMs;
  }
  if (TRACING_GC && target.probe) Object.assign(row, await gcRow(target.logFile, logFrom));
  return row;
}

async function gcRow(logFile: string, fromByte: number): Promise<Row> {
  const pauses = await gcPausesSince(logFile, fromByte);
  return { scavenges: pauses.scavenges, "scavenge ms": Number(pauses.scavengeMs.toFixed(1)), "mark-compacts": pauses.markCompacts, "mark-compact ms": Number(pauses.markCompactMs.toFixed(1)) };
}

await main();
