/**
 * `npm run perf:pod-start -- [--pods N]` (root; the real node is one per host, so hold its lock):
 * pod created → container Running on the real node (kubelet, containerd; qemu TCG pod VMs) with
 * peerpods serving it (webhook, worker, advertiser as the node's device plugin, hypervisor part for
 * containerd-shim-peerpods-v2). Per mode, N pods are created one after another, each deleted (and
 * its VM with it) before the next: plain runc pods as the baseline, RuntimeClass `peerpods` pods
 * booted cold (no warm pool), and warm-pool hits (pool min 1 of the pods' instance type, each pod
 * created once the pool shows an idle VM). Created is when the create call is sent, Running is when
 * a watch first shows the container running. Then `kubectl exec` round trips through the apiserver
 * into a running pod of each kind. Results go to e2e/perf/results/pod-start.json.
 * Goal (reported, not asserted): warm-pool hit ≤ 2 s, cold ≤ 8 s.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { rm } from "node:fs/promises";
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../../src/kube/peerpod.js";
import { startCluster } from "../cluster/cluster.js";
import { startRealNode, type RealNode } from "../cluster/node/node.js";
import { execInPod } from "../support/exec.js";
import { trackedTempDir } from "../support/leftovers.js";
import type { Peerpods } from "../support/peerpods.js";
import { killMentioning, PEER_LABEL, PEERPODS_RUNTIME_CLASS, peerpodsContainerd, servePeerpodsForNode, untilWebhookAdmits } from "../support/peerpods-node.js";
import { createNamespace } from "../support/suite.js";
import { waitFor } from "../support/wait.js";
import { idlePoolVms } from "./lib/pool.js";
import { watchPodMarks, type PodMarks } from "./lib/watch.js";
import { percentile, printTable, runBenchmark, writeResults, type Row } from "./lib/report.js";

const { values: flags } = parseArgs({ options: { pods: { type: "string", default: "10" }, execs: { type: "string", default: "10" } } });
const PODS = Number(flags.pods);
const EXECS = Number(flags.execs);
const NAMESPACE = "perf-pod-start";
/** The smallest type of the local overlay's catalog: what the webhook picks for the pods' requests. */
const INSTANCE_TYPE = "small";
const START_TIMEOUT_MS = 180_000;
const GOAL_MS = { warm: 2000, cold: 8000 };

type Mode = "runc" | "cold" | "warm";

interface Bench {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  peerpods: Peerpods;
  /** When a watch first showed each pod's container running. */
  running: Map<string, number>;
}

function benchPod(name: string, mode: Mode): V1Pod {
  return {
    metadata: { name, namespace: NAMESPACE },
    spec: {
      ...(mode === "runc" ? {} : { runtimeClassName: PEERPODS_RUNTIME_CLASS }),
      terminationGracePeriodSeconds: 0,
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"], resources: { requests: { cpu: "100m", memory: "64Mi" } } }],
    },
  };
}

const peerPodRecord = (bench: Bench, name: string): Promise<PeerPod | undefined> =>
  bench.custom
    .getNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE, name })
    .then((o) => o as PeerPod)
    .catch(() => undefined);

/** Creates the pod and resolves with created → Running in ms. */
async function startPod(bench: Bench, name: string, mode: Mode): Promise<number> {
  const createdAt = performance.timeOrigin + performance.now();
  await bench.core.createNamespacedPod({ namespace: NAMESPACE, body: benchPod(name, mode) });
  await waitFor(() => bench.running.has(name), { timeoutMs: START_TIMEOUT_MS, intervalMs: 20, message: `${NAMESPACE}/${name} (${mode}) Running` });
  return Math.round(bench.running.get(name)! - createdAt);
}

/**
 * Deletes the pod as a user would (a 1 s grace period, the kubelet confirming) and waits until it is
 * gone, and for a peer pod until the worker deleted its VM. A forced delete removes the pod before its
 * kubelet stops it: the worker deletes the VM at once and the kubelet may make the sandbox again (a VM
 * booted for a pod that is gone, competing with the next pod's start).
 */
async function deletePod(bench: Bench, name: string): Promise<void> {
  await bench.core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 1 });
  await waitFor(async () => !(await bench.core.listNamespacedPod({ namespace: NAMESPACE })).items.some((p) => p.metadata?.name === name), { timeoutMs: 60_000, message: `${name} gone` });
  await waitFor(async () => (await peerPodRecord(bench, name)) === undefined, { timeoutMs: 60_000, message: `${name}'s PeerPod (its VM) gone` });
}

async function setPoolMin(bench: Bench, min: number): Promise<void> {
  const body = { spec: { warmPool: { pools: min > 0 ? [{ instanceType: INSTANCE_TYPE, min }] : [] } } };
  await bench.custom.patchClusterCustomObject({ group: "peerpods.io", version: "v1alpha1", plural: "peerpodpolicies", name: "default", body }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
}

interface Started {
  ms: number[];
  /** Per peer pod, whether it got a warm-pool VM; a warm-mode miss is not counted among the hits. */
  warmPool: (string | null)[];
}

/** N pods of one mode, one after another; the warm ones each created on a pool with an idle VM. */
async function measureStarts(bench: Bench, mode: Mode): Promise<Started> {
  const result: Started = { ms: [], warmPool: [] };
  for (let i = 0; i < PODS; i++) {
    if (mode === "warm") await waitFor(async () => (await idlePoolVms(bench.peerpods, INSTANCE_TYPE)) >= 1, { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, message: "an idle pool VM" });
    const name = `${mode}-${i}`;
    const ms = await startPod(bench, name, mode);
    const record = mode === "runc" ? undefined : await peerPodRecord(bench, name);
    if (record && record.spec.instanceType !== INSTANCE_TYPE) throw new Error(`${name} got instance type ${record.spec.instanceType}, not ${INSTANCE_TYPE}`);
    const pool = record?.status?.warmPool ?? null;
    if (mode !== "warm" || pool === "hit") result.ms.push(ms);
    result.warmPool.push(pool);
    console.log(`  ${mode} ${name}: ${ms} ms${pool ? ` (warm pool ${pool})` : ""}`);
    await deletePod(bench, name);
  }
  return result;
}

/** Exec round trips (`echo ok` through the apiserver) into a Running pod of the mode. */
async function measureExecs(bench: Bench, mode: Mode): Promise<number[]> {
  const name = `exec-${mode}`;
  await startPod(bench, name, mode);
  const ms: number[] = [];
  for (let i = 0; i < EXECS; i++) {
    const start = performance.now();
    const result = await execInPod(bench.kc, NAMESPACE, name, "app", ["echo", "ok"]);
    ms.push(Math.round(performance.now() - start));
    if (result.stdout !== "ok\n" || result.status.status !== "Success") throw new Error(`exec in ${name}: ${JSON.stringify(result)}`);
  }
  console.log(`  exec ${mode}: ${ms.join(", ")} ms`);
  await deletePod(bench, name);
  return ms;
}

interface Measured {
  starts: Record<Mode, Started>;
  execs: Record<"runc" | "peerpods", number[]>;
}

async function measure(bench: Bench): Promise<Measured> {
  const runc = await measureStarts(bench, "runc");
  const cold = await measureStarts(bench, "cold");
  const execs = { runc: await measureExecs(bench, "runc"), peerpods: await measureExecs(bench, "cold") };
  await setPoolMin(bench, 1);
  const warm = await measureStarts(bench, "warm");
  await setPoolMin(bench, 0);
  await waitFor(async () => (await idlePoolVms(bench.peerpods, INSTANCE_TYPE)) === 0, { timeoutMs: 60_000, message: "the pool emptied" });
  return { starts: { runc, cold, warm }, execs };
}

function report(measured: Measured): Row[] {
  const baseline = percentile(measured.starts.runc.ms, 50);
  const execBaseline = percentile(measured.execs.runc, 50);
  const row = (what: string, ms: number[], base: number, goalMs?: number): Row => ({
    what,
    n: ms.length,
    p50Ms: percentile(ms, 50),
    p90Ms: percentile(ms, 90),
    maxMs: Math.max(...ms),
    "p50 ÷ runc": percentile(ms, 50) / base,
    goal: goalMs === undefined ? "" : `≤ ${goalMs} ms: ${percentile(ms, 50) <= goalMs ? "met" : "missed"}`,
  });
  const misses = measured.starts.warm.warmPool.filter((p) => p !== "hit").length;
  const rows = [
    row("created → Running, runc (baseline)", measured.starts.runc.ms, baseline),
    row("created → Running, peerpods cold", measured.starts.cold.ms, baseline, GOAL_MS.cold),
    row(`created → Running, peerpods warm-pool hit${misses ? ` (${misses} misses left out)` : ""}`, measured.starts.warm.ms, baseline, GOAL_MS.warm),
    row("exec round trip, runc (baseline)", measured.execs.runc, execBaseline),
    row("exec round trip, peerpods", measured.execs.peerpods, execBaseline),
  ];
  printTable(`pod start and exec on the real node (qemu TCG pod VMs; ${PODS} pods per mode, ${EXECS} execs)`, rows);
  return rows;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the real node (kubelet, containerd) needs root");
  if (!(PODS >= 1 && EXECS >= 1)) throw new Error(`--pods and --execs must be at least 1, got ${flags.pods} and ${flags.execs}`);
  // Short: the hypervisor socket and the VMs' unix sockets must stay under 108 bytes.
  const dir = trackedTempDir("pp-start-");
  const hypervisorSocket = join(dir, "hypervisor.sock");
  const cluster = await startCluster();
  let node: RealNode | undefined;
  let peerpods: Peerpods | undefined;
  let podsDir: string | undefined;
  let watch: PodMarks<"running"> | undefined;
  try {
    node = await startRealNode(cluster, { labels: PEER_LABEL, containerd: await peerpodsContainerd(hypervisorSocket) });
    ({ peerpods, podsDir } = await servePeerpodsForNode(cluster, node, { workDir: dir, hypervisorSocket, parts: ["webhook", "advertiser", "worker", "hypervisor"] }));
    const kc = cluster.kc;
    const core = kc.makeApiClient(CoreV1Api);
    await createNamespace(core, NAMESPACE);
    await untilWebhookAdmits(kc, benchPod("probe", "cold"));
    watch = await watchPodMarks(kc, NAMESPACE, { running: (pod) => Boolean(pod.status?.containerStatuses?.[0]?.state?.running) }, () => performance.timeOrigin + performance.now());
    const bench: Bench = { kc, core, custom: kc.makeApiClient(CustomObjectsApi), peerpods, running: watch.marks.running };
    const measured = await measure(bench);
    const summary = report(measured);
    await writeResults("pod-start", { pods: PODS, execs: EXECS, instanceType: INSTANCE_TYPE, goalMs: GOAL_MS, summary, raw: measured });
  } finally {
    await watch?.stop();
    await peerpods?.stop();
    const killed = peerpods ? killMentioning(peerpods.stateDir) : 0;
    if (killed) console.log(`${killed} leftover VM process(es) killed`);
    const left = (await node?.stop()) ?? [];
    // the kubelet collects deleted pods' sandboxes lazily: the node's stop sweeps what it had not yet
    if (left.length) console.log(`the node's stop swept ${left.length} leftovers (deleted pods' sandboxes, mounts, cgroups)`);
    await cluster.stop();
    if (podsDir) await rm(podsDir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

runBenchmark(main);
