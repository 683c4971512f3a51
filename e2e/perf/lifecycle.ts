/**
 * `npm run perf:lifecycle`: what the worker adds on top of the cloud. On the local control plane with
 * the sim provider at FIXED latencies (create answers after CREATE_MS, the VM is ready READY_MS later),
 * 100 pods are bound by the real scheduler; for each pod we take the time its binding reached a watch
 * and the time its vm-ready condition (written by the worker) reached a watch. Overhead = that interval
 * minus CREATE_MS + READY_MS: queueing, API writes, ready detection and watch delivery.
 * Runs: a burst of 100 at --worker-concurrency 8 (the default) and 32, and 100 paced at 10 pods/s.
 * Results go to e2e/perf/results/lifecycle.json.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { ANNOTATION, VM_READY_CONDITION } from "../../src/kube/annotations.js";
import { apiStatus } from "../../src/kube/errors.js";
import { startInformer } from "../../src/kube/informer.js";
import { silentLogger } from "../../src/log/logger.js";
import { startCluster } from "../cluster/cluster.js";
import { tail } from "../cluster/process.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR } from "../support/manifests.js";
import { startPeerpods } from "../support/peerpods.js";
import { waitFor } from "../support/wait.js";
import { median, percentile, printTable, writeResults, type Row, runBenchmark } from "./lib/report.js";

const PODS = Number(process.env.PODS ?? 100);
const CREATE_MS = 200;
const READY_MS = 1000;
const SIM_MS = CREATE_MS + READY_MS;
const NODES = 5;
const VM_RESOURCE = "kata.peerpods.io/vm";

interface Run {
  name: string;
  concurrency: number;
  /** Pods created per second; 0 = all at once. */
  podsPerSecond: number;
}

const RUNS: Run[] = [
  { name: "burst", concurrency: 8, podsPerSecond: 0 },
  { name: "burst", concurrency: 32, podsPerSecond: 0 },
  { name: "paced", concurrency: 8, podsPerSecond: 10 },
];

/** A pod as the webhook leaves it: one VM unit, the instance type annotation, the readiness gate. */
function mutatedPeerPod(name: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, annotations: { [ANNOTATION.instanceType]: "small" } },
    spec: {
      runtimeClassName: "kata-remote",
      readinessGates: [{ conditionType: VM_READY_CONDITION }],
      containers: [{ name: "app", image: "busybox", resources: { requests: { [VM_RESOURCE]: "1" }, limits: { [VM_RESOURCE]: "1" } } }],
    },
  };
}

/** Watch-arrival times of each pod's binding and of the worker's vm-ready condition. */
async function watchPods(kc: KubeConfig, namespace: string): Promise<{ bound: Map<string, number>; ready: Map<string, number>; stop(): Promise<void> }> {
  const bound = new Map<string, number>();
  const ready = new Map<string, number>();
  const seen = (pod: V1Pod): void => {
    const name = pod.metadata!.name!;
    const now = Date.now();
    if (pod.spec?.nodeName && !bound.has(name)) bound.set(name, now);
    const byWorker = pod.status?.conditions?.some((c) => c.type === VM_READY_CONDITION && c.status === "True" && c.reason === "VMReady");
    if (byWorker && !ready.has(name)) ready.set(name, now);
  };
  const core = kc.makeApiClient(CoreV1Api);
  const watched = startInformer<V1Pod>(kc, `/api/v1/namespaces/${namespace}/pods`, () => core.listNamespacedPod({ namespace }), silentLogger, (informer) => {
    informer.on("add", seen);
    informer.on("update", seen);
  });
  await watched.synced;
  return { bound, ready, stop: () => watched.stop() };
}

async function runOnce(kc: KubeConfig, kubeconfig: string, dir: string, run: Run, index: number): Promise<{ row: Row; overheadsMs: number[] }> {
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `perf-lifecycle-${index}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace }), { message: "the default ServiceAccount" });
  const policyFile = join(dir, `policy-${index}.json`);
  const sim = { createMs: CREATE_MS, readyMs: READY_MS, deleteMs: 0, inventoryFile: join(dir, `inventory-${index}.json`) };
  await writeFile(policyFile, JSON.stringify({ provider: { name: "sim", sim } }));
  const peerpods = await startPeerpods({
    kubeconfig,
    args: ["--parts=worker", "--no-leader-elect", `--policy-file=${policyFile}`, `--worker-concurrency=${run.concurrency}`, "--log-level=info", `--cluster-id=perf-${index}`],
  });
  const watch = await watchPods(kc, namespace);
  try {
    const started = Date.now();
    const creates: Promise<unknown>[] = [];
    for (let i = 0; i < PODS; i++) {
      creates.push(core.createNamespacedPod({ namespace, body: mutatedPeerPod(`p-${i}`) }));
      if (run.podsPerSecond > 0) await new Promise((resolve) => setTimeout(resolve, 1000 / run.podsPerSecond));
    }
    await Promise.all(creates);
    await waitFor(() => watch.ready.size === PODS, {
      timeoutMs: 180_000,
      intervalMs: 200,
      message: `${PODS} pods with a ready VM`,
    }).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; ${watch.bound.size} bound, ${watch.ready.size} ready\npeerpods log tail:\n${tail(peerpods.logFile, 30)}`);
    });
    const totalS = (Date.now() - started) / 1000;
    const boundToReady = [...watch.ready].map(([name, at]) => at - watch.bound.get(name)!);
    const overheadsMs = boundToReady.map((ms) => ms - SIM_MS);
    const row: Row = {
      run: run.name,
      concurrency: run.concurrency,
      podsPerSecond: run.podsPerSecond || "all",
      pods: PODS,
      boundToReadyMedianMs: Math.round(median(boundToReady)),
      boundToReadyP99Ms: Math.round(percentile(boundToReady, 99)),
      overheadMedianMs: Math.round(median(overheadsMs)),
      overheadP99Ms: Math.round(percentile(overheadsMs, 99)),
      overheadMinMs: Math.round(Math.min(...overheadsMs)),
      totalS: Number(totalS.toFixed(1)),
    };
    return { row, overheadsMs: overheadsMs.map(Math.round) };
  } finally {
    await watch.stop();
    // this run's worker tears its pods down, so the next run's worker starts on a quiet apiserver
    await removeNamespace(core, namespace).finally(() => peerpods.stop());
  }
}

async function removeNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.deleteNamespace({ name });
  await waitFor(() => core.readNamespace({ name }).then(() => false, (error: unknown) => apiStatus(error) === 404), {
    timeoutMs: 180_000,
    intervalMs: 500,
    message: `namespace ${name} gone`,
  });
}

/** The apiserver's write rate on this machine right now (ConfigMap creates, 8 at a time): the worker makes about 5 writes per pod. */
async function apiserverWritesPerSecond(kc: KubeConfig, count = 200): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = "perf-lifecycle-baseline";
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const started = Date.now();
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < count) await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: `c-${next++}` }, data: { k: "v" } } });
  };
  await Promise.all(Array.from({ length: 8 }, writer));
  const rate = count / ((Date.now() - started) / 1000);
  await core.deleteNamespace({ name: namespace });
  return Math.round(rate);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "perf-lifecycle-"));
  const cluster = await startCluster();
  try {
    const kc = cluster.kc;
    const core = kc.makeApiClient(CoreV1Api);
    const manifests = await loadManifests(LOCAL_OVERLAY_DIR);
    await applyObjects(kc, manifests.filter((o) => o.kind === "Namespace" || o.kind === "CustomResourceDefinition" || o.kind === "RuntimeClass"));
    const nodes = Array.from({ length: NODES }, (_, i) => `perf-node-${i}`);
    await cluster.addNodes(nodes.map((name) => ({ name })));
    const capacity = { status: { capacity: { [VM_RESOURCE]: "1000" }, allocatable: { [VM_RESOURCE]: "1000" } } };
    for (const name of nodes) await core.patchNodeStatus({ name, body: capacity }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));

    const loadBefore = loadavg()[0]!;
    const writesPerSecond = await apiserverWritesPerSecond(kc);
    console.log(`apiserver baseline: ${writesPerSecond} writes/s (ConfigMap creates, 8 at a time)`);
    const results = [];
    for (const [index, run] of RUNS.entries()) {
      console.log(`run ${index + 1}/${RUNS.length}: ${run.name}, concurrency ${run.concurrency}, ${PODS} pods`);
      results.push(await runOnce(kc, cluster.kubeconfigPath, dir, run, index));
    }
    const rows = results.map((result) => result.row);
    printTable(`bound → vm-ready over the sim's ${SIM_MS} ms (create ${CREATE_MS} + ready ${READY_MS}), ${PODS} pods, ${NODES} KWOK nodes; apiserver ${writesPerSecond} writes/s`, rows);
    await writeResults("lifecycle", { simMs: { create: CREATE_MS, ready: READY_MS }, nodes: NODES, apiserverWritesPerSecond: writesPerSecond, loadAverageBefore: loadBefore, loadAverageAfter: loadavg()[0], summary: rows, runs: results });
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main);
