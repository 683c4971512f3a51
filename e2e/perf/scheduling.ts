/**
 * `npm run perf:scheduling`: binding throughput of the real kube-scheduler on the local control plane
 * (KWOK nodes), for pods asking for one `kata.peerpods.io/vm` slot, in one run:
 *   plain          — no extender
 *   noop           — through a no-op extender in Node over HTTPS (e2e/perf/noop-server.ts: passes every node, scores 0)
 *   noop-go-http   — the same no-op in Go (src/runtime/perf/noopserver) over plain HTTP: the cheapest round trip
 *   noop-go-https  — the Go no-op over HTTPS (HTTP/1.1, as peerpods serves)
 *   peerpods       — through peerpods' extender (manifests/scheduler config: filter + prioritize, nodeCacheCapable)
 * plain, noop and peerpods at the scheduler's default client QPS (50), all of them at qps/burst 5000/10000.
 * A last run schedules pods that do not ask for the resource under peerpods' extender and counts its
 * calls (must be 0: managedResources). Pods of a run carry their own schedulerName, are all created
 * first, and the scheduler is restarted with a profile of that name; throughput = bindings / (last −
 * first binding), from watch arrival times. Settings take turns within each round (the QPS 5000
 * ones in an order rotated each round), and the ratios peerpods ÷ each no-op are taken per round
 * (neighbouring runs share the machine's mood) as well as over the medians. Per run, from kube-scheduler's /metrics: the mean scheduling algorithm time per
 * attempt (filter, extenders, score), whose growth over plain is what the extender round trips cost a
 * cycle; from peerpods' /metrics: its time per call by phase (parse, decide, serialise) and in all.
 * Everything (etcd, apiserver, scheduler, KWOK, the extenders) shares this machine.
 * BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") go to peerpods' node as NODE_OPTIONS.
 */
import { readFile, writeFile } from "node:fs/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { parse as parseYaml, stringify } from "yaml";
import { ANNOTATION } from "../../src/kube/annotations.js";
import { startCluster, type Cluster } from "../cluster/cluster.js";
import { localCerts } from "../support/certs.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR, MANIFESTS_DIR } from "../support/manifests.js";
import { startPeerpods, type Peerpods } from "../support/peerpods.js";
import { waitFor } from "../support/wait.js";
import { median, printTable, writeResults, type Row, runBenchmark } from "./lib/report.js";
import { watchPodMarks } from "./lib/watch.js";
import { buildGoNoopServer, startGoNoopServer, startNoopServer, type NoopServer } from "./lib/noop.js";
import { meanBetween, sampleSum } from "./lib/prometheus.js";

const NODES = Number(process.env.NODES ?? 100);
const PODS = Number(process.env.PODS ?? 500);
// one run at 5,000 QPS swings by ±30 %: the table gives medians over runs and per-round ratios
const REPEATS = Number(process.env.REPEATS ?? 3);
const HIGH_QPS = 5000;
const VM_RESOURCE = "kata.peerpods.io/vm";
const NAMESPACE = "perf-scheduling";
const CREATE_CONCURRENCY = 32;
const SERVER_NODE_ARGS = process.env.BENCH_SERVER_NODE_ARGS;

const NOOPS = ["noop", "noop-go-http", "noop-go-https"] as const;
type Noop = (typeof NOOPS)[number];
type Extender = "plain" | Noop | "peerpods";
interface Setting {
  extender: Extender;
  qps: number | undefined;
}

const SETTINGS: Setting[] = [
  ...(["plain", "noop", "peerpods"] as const).map((extender) => ({ extender, qps: undefined })),
  ...(["plain", ...NOOPS, "peerpods"] as const).map((extender) => ({ extender, qps: HIGH_QPS })),
];

/** Round r runs the default-QPS settings, then the QPS 5000 ones rotated by r − 1, so no setting always follows the same neighbour. */
function roundOrder(round: number): Setting[] {
  const high = SETTINGS.filter((s) => s.qps === HIGH_QPS);
  const shift = (round - 1) % high.length;
  return [...SETTINGS.filter((s) => s.qps !== HIGH_QPS), ...high.slice(shift), ...high.slice(0, shift)];
}

interface Extenders {
  urls: Record<Exclude<Extender, "plain">, string>;
  peerpods: Peerpods;
  caBundle: string;
}

const VERBS = ["filter", "prioritize"] as const;
const PHASES = ["parse", "decide", "serialise"] as const;
type Verb = (typeof VERBS)[number];

/** Peerpods' own time per call over one run, in µs: the whole handler and its phases (absent where the build has no phase metric). */
type Inside = Record<Verb, { calls: number; handlerUs: number } & Partial<Record<(typeof PHASES)[number], number>>>;

interface RunResult {
  podsPerSecond: number;
  seconds: number;
  extenderCalls: number;
  /** kube-scheduler's mean scheduling algorithm time (filter, extenders, score) per attempt, in ms. */
  algorithmMs: number;
  inside?: Inside;
}

const peerPod = (name: string, schedulerName: string, asksForVm = true): V1Pod => ({
  metadata: { name, annotations: asksForVm ? { [ANNOTATION.instanceType]: "small" } : {} },
  spec: {
    schedulerName,
    ...(asksForVm ? { runtimeClassName: "kata-remote" } : {}),
    containers: [{ name: "app", image: "busybox", resources: asksForVm ? { requests: { [VM_RESOURCE]: "1" }, limits: { [VM_RESOURCE]: "1" } } : {} }],
    terminationGracePeriodSeconds: 0,
  },
});

/** The shipped scheduler configuration's extender block, pointed at `url` (plain HTTP for an http:// URL). */
async function extenderBlock(url: string, caBundle: string): Promise<Record<string, unknown>> {
  const shipped = parseYaml(await readFile(join(MANIFESTS_DIR, "scheduler", "kube-scheduler-config.yaml"), "utf8")) as { extenders: Record<string, unknown>[] };
  const { tlsConfig: _, ...block } = shipped.extenders[0]!;
  const https = url.startsWith("https:");
  return { ...block, urlPrefix: url, enableHTTPS: https, ...(https ? { tlsConfig: { caData: caBundle } } : {}) };
}

async function schedulerConfig(dir: string, schedulerName: string, setting: Setting, extenders: Extenders): Promise<string> {
  const config = {
    apiVersion: "kubescheduler.config.k8s.io/v1",
    kind: "KubeSchedulerConfiguration",
    clientConnection: setting.qps ? { qps: setting.qps, burst: setting.qps * 2 } : {},
    profiles: [{ schedulerName }],
    ...(setting.extender === "plain" ? {} : { extenders: [await extenderBlock(extenders.urls[setting.extender], extenders.caBundle)] }),
  };
  const file = join(dir, `${schedulerName}.yaml`);
  await writeFile(file, stringify(config));
  return file;
}

const peerpodsMetrics = async (peerpods: Peerpods): Promise<string> => (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`)).text();

function inside(before: string, after: string): Inside {
  const delta = (name: string, labels: Record<string, string>): number => sampleSum(after, name, labels) - sampleSum(before, name, labels);
  const verb = (v: Verb): Inside[Verb] => {
    const calls = delta("peerpods_extender_requests_total", { verb: v });
    const us = (seconds: number): number => Number(((seconds / calls) * 1e6).toFixed(1));
    // a build without the phase counter has no such samples
    const phases = sampleSum(after, "peerpods_extender_phase_seconds_total") > 0 ? PHASES.map((phase) => [phase, us(delta("peerpods_extender_phase_seconds_total", { verb: v, phase }))]) : [];
    return { calls, handlerUs: us(delta("peerpods_extender_duration_seconds_sum", { verb: v })), ...Object.fromEntries(phases) };
  };
  return { filter: verb("filter"), prioritize: verb("prioritize") };
}

async function createPods(core: CoreV1Api, pods: V1Pod[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pods.length) {
      const body = pods[next++]!;
      await core.createNamespacedPod({ namespace: NAMESPACE, body });
    }
  };
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
}

/** A collection delete of many pods can outlast the apiserver's request timeout: repeat it until none is left. */
async function deletePods(core: CoreV1Api): Promise<void> {
  await waitFor(
    async () => {
      if ((await core.listNamespacedPod({ namespace: NAMESPACE, limit: 1 })).items.length === 0) return true;
      await core.deleteCollectionNamespacedPod({ namespace: NAMESPACE, gracePeriodSeconds: 0 });
      return false;
    },
    { timeoutMs: 600_000, intervalMs: 500, message: "the pods to go" },
  );
}

let runs = 0;

/** Creates the pods for a scheduler that is not running yet, starts it, and times the bindings. */
async function run(cluster: Cluster, dir: string, setting: Setting, extenders: Extenders, asksForVm = true): Promise<RunResult> {
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const schedulerName = `perf-${++runs}`;
  const configFile = await schedulerConfig(dir, schedulerName, setting, extenders);
  await createPods(core, Array.from({ length: PODS }, (_, i) => peerPod(`p-${runs}-${i}`, schedulerName, asksForVm)));
  const watch = await watchPodMarks(cluster.kc, NAMESPACE, { bound: (pod) => Boolean(pod.spec?.nodeName) });
  const metricsBefore = await peerpodsMetrics(extenders.peerpods);
  try {
    await cluster.restartScheduler(configFile);
    await waitFor(() => watch.marks.bound.size >= PODS, { timeoutMs: 600_000, intervalMs: 200, message: `${PODS} bindings (${setting.extender}, qps ${setting.qps ?? "default"})` });
    const times = [...watch.marks.bound.values()].sort((a, b) => a - b);
    const seconds = (times.at(-1)! - times[0]!) / 1000;
    const [scheduler, metricsAfter] = await Promise.all([cluster.schedulerMetrics(), peerpodsMetrics(extenders.peerpods)]);
    const calls = sampleSum(metricsAfter, "peerpods_extender_requests_total") - sampleSum(metricsBefore, "peerpods_extender_requests_total");
    return {
      podsPerSecond: (PODS - 1) / seconds,
      seconds,
      extenderCalls: calls,
      algorithmMs: meanBetween("", scheduler, "scheduler_scheduling_algorithm_duration_seconds") * 1000,
      ...(setting.extender === "peerpods" && asksForVm ? { inside: inside(metricsBefore, metricsAfter) } : {}),
    };
  } finally {
    await watch.stop();
    await deletePods(core);
  }
}

async function prepare(cluster: Cluster, dir: string): Promise<Extenders> {
  const manifests = await loadManifests(LOCAL_OVERLAY_DIR);
  await applyObjects(cluster.kc, manifests.filter((o) => o.kind === "Namespace" || o.kind === "CustomResourceDefinition" || o.kind === "RuntimeClass"));
  const core = cluster.kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  const nodes = Array.from({ length: NODES }, (_, i) => `perf-node-${i}`);
  await cluster.addNodes(nodes.map((name) => ({ name })));
  const capacity = { status: { capacity: { [VM_RESOURCE]: String(PODS), pods: String(PODS) }, allocatable: { [VM_RESOURCE]: String(PODS), pods: String(PODS) } } };
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  for (const name of nodes) await core.patchNodeStatus({ name, body: capacity }, mergePatch);
  await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });

  const policyFile = join(dir, "policy.yaml");
  await writeFile(policyFile, stringify({ nodes: { vmsPerNode: PODS }, provider: { name: "sim" } }));
  const peerpods = await startPeerpods({ kubeconfig: cluster.kubeconfigPath, args: ["--parts=extender", `--policy-file=${policyFile}`, "--log-level=info"], env: SERVER_NODE_ARGS ? { NODE_OPTIONS: SERVER_NODE_ARGS } : undefined });
  const certs = await localCerts();
  const tls = { certFile: certs.files.cert, keyFile: certs.files.key };
  const binary = await buildGoNoopServer();
  noops.push(await startNoopServer({ dir, ...tls }));
  noops.push(await startGoNoopServer({ binary, dir, name: "noop-go-http" }));
  noops.push(await startGoNoopServer({ binary, dir, name: "noop-go-https", tls }));
  const [noop, goHttp, goHttps] = noops as [NoopServer, NoopServer, NoopServer];
  const urls = { noop: noop.url, "noop-go-http": goHttp.url, "noop-go-https": goHttps.url, peerpods: `https://127.0.0.1:${peerpods.extenderPort}` };
  return { urls, peerpods, caBundle: certs.caBundle };
}

const noops: NoopServer[] = [];

const ratio = (a: number, b: number): number => Number((a / b).toFixed(2));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "perf-scheduling-"));
  const cluster = await startCluster({ schedulerMetrics: true });
  let extenders: Extenders | undefined;
  try {
    extenders = await prepare(cluster, dir);
    const loadBefore = loadavg()[0]!;
    const started = Date.now();
    const measured = new Map<Setting, RunResult[]>(SETTINGS.map((s) => [s, []]));
    const roundLoad: number[] = [];
    for (let repeat = 1; repeat <= REPEATS; repeat++) {
      roundLoad.push(loadavg()[0]!);
      for (const setting of roundOrder(repeat)) {
        const result = await run(cluster, dir, setting, extenders);
        console.log(
          `round ${repeat}: ${setting.extender}, qps ${setting.qps ?? 50}: ${result.podsPerSecond.toFixed(0)} pods/s, algorithm ${result.algorithmMs.toFixed(2)} ms/attempt (${result.extenderCalls} peerpods extender calls)`,
        );
        measured.get(setting)!.push(result);
      }
    }
    const plainPods = await run(cluster, dir, { extender: "peerpods", qps: HIGH_QPS }, extenders, false);
    const results = (extender: Extender, qps: number | undefined): RunResult[] => measured.get(SETTINGS.find((s) => s.extender === extender && s.qps === qps)!)!;
    const rate = (extender: Extender, qps: number | undefined): number => median(results(extender, qps).map((r) => r.podsPerSecond));
    const algorithm = (extender: Extender, qps: number | undefined): number => median(results(extender, qps).map((r) => r.algorithmMs));
    const rows: Row[] = SETTINGS.map((s) => ({
      "client qps": s.qps ?? 50,
      extender: s.extender,
      "pods/s (median)": Math.round(rate(s.extender, s.qps)),
      "÷ plain": ratio(rate(s.extender, s.qps), rate("plain", s.qps)),
      "peerpods ÷ this": NOOPS.includes(s.extender as Noop) ? ratio(rate("peerpods", s.qps), rate(s.extender, s.qps)) : "",
      "algorithm ms/attempt": Number(algorithm(s.extender, s.qps).toFixed(3)),
      "+ over plain ms": s.extender === "plain" ? "" : Number((algorithm(s.extender, s.qps) - algorithm("plain", s.qps)).toFixed(3)),
    }));
    printTable(`scheduling: ${PODS} pods asking for one VM slot, ${NODES} KWOK nodes, ${REPEATS} round(s) (load average ${loadBefore.toFixed(1)} before)`, rows);

    // per round at QPS 5000: peerpods ÷ each no-op from runs minutes apart, not from medians of different rounds
    const high = (extender: Extender, round: number): RunResult => results(extender, HIGH_QPS)[round]!;
    const roundRatios = Array.from({ length: REPEATS }, (_, round) => Object.fromEntries(NOOPS.map((n) => [n, ratio(high("peerpods", round).podsPerSecond, high(n, round).podsPerSecond)])) as Record<Noop, number>);
    const rounds: Row[] = roundRatios.map((ratios, round) => ({
      round: round + 1,
      "load avg": Number(roundLoad[round]!.toFixed(1)),
      ...Object.fromEntries((["plain", ...NOOPS, "peerpods"] as const).map((e) => [`${e} pods/s`, Math.round(high(e, round).podsPerSecond)])),
      ...Object.fromEntries(NOOPS.map((n) => [`peerpods ÷ ${n}`, ratios[n]])),
    }));
    const medianRatios = Object.fromEntries(NOOPS.map((n) => [`peerpods ÷ ${n}`, median(roundRatios.map((r) => r[n]))]));
    printTable(`QPS ${HIGH_QPS}, per round`, [...rounds, { round: "median", ...medianRatios }]);

    const insideRuns = results("peerpods", HIGH_QPS).map((r) => r.inside!);
    const insideRows: Row[] = VERBS.map((verb) => {
      const med = (pick: (i: Inside[Verb]) => number | undefined): number | string => {
        const values = insideRuns.map((i) => pick(i[verb])).filter((v): v is number => v !== undefined);
        return values.length ? median(values) : "";
      };
      return { verb, "calls/run": med((i) => i.calls), "handler µs": med((i) => i.handlerUs), ...Object.fromEntries(PHASES.map((p) => [`${p} µs`, med((i) => i[p])])) };
    });
    const overPlain = algorithm("peerpods", HIGH_QPS) - algorithm("plain", HIGH_QPS);
    printTable(`inside peerpods at QPS ${HIGH_QPS}, mean per call (median over rounds); at the scheduler both calls add ${(overPlain * 1000).toFixed(0)} µs to an attempt's algorithm time over plain`, insideRows);
    console.log(`pods without the VM resource under peerpods' extender: ${Math.round(plainPods.podsPerSecond)} pods/s, ${plainPods.extenderCalls} extender calls (must be 0)`);
    console.log(`${((Date.now() - started) / 60_000).toFixed(1)} min of runs`);
    await writeResults("scheduling", {
      nodes: NODES,
      pods: PODS,
      repeats: REPEATS,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg()[0],
      rows,
      rounds,
      medianRatios,
      inside: insideRows,
      runs: SETTINGS.map((s) => ({ ...s, results: measured.get(s) })),
      podsWithoutVm: plainPods,
      targets: { peerpodsOverNoopHighQps: 0.9, peerpodsOverPlainDefaultQps: 0.95, extenderCallsForPlainPods: 0 },
    });
  } finally {
    for (const noop of noops) await noop.process.stop();
    await extenders?.peerpods.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main);
