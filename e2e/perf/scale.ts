/**
 * `npm run perf:scale`: peerpods (webhook, extender, advertiser, worker; compiled build; sim provider at
 * zero latency) on the local control plane with NODES KWOK nodes and PODS peer pods bound to them.
 * Reports RSS and heap once every pod has a ready VM, then CPU over a quiet STEADY_S window in which
 * nothing changes: informers idle, no full relists on a timer, no hot loops. Everything runs on this
 * machine, so the converge time mostly measures the apiserver, etcd and KWOK.
 * CPU_PROF_DIR=dir writes a V8 CPU profile of peerpods there when it stops; LOG_FILE=file keeps its log.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { ANNOTATION, VM_READY_CONDITION } from "../../src/kube/annotations.js";
import { startCluster } from "../cluster/cluster.js";
import { localCerts } from "../support/certs.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR } from "../support/manifests.js";
import { freePorts } from "../support/ports.js";
import { waitFor } from "../support/wait.js";
import { startServe } from "./lib/peerpods.js";
import { printTable, writeResults, runBenchmark } from "./lib/report.js";

const NODES = Number(process.env.NODES ?? 1000);
const PODS = Number(process.env.PODS ?? 10_000);
const STEADY_S = Number(process.env.STEADY_S ?? 60);
const NAMESPACE = "perf-scale";
const VM_RESOURCE = "kata.peerpods.io/vm";
const CREATE_CONCURRENCY = 32;
/** The worker's reason on the condition; KWOK's stages may set readiness-gate conditions too. */
const VM_READY_REASON = "VMReady";

const boundPeerPod = (i: number): V1Pod => ({
  metadata: { name: `p-${i}`, annotations: { [ANNOTATION.instanceType]: "small" } },
  spec: {
    nodeName: `scale-node-${i % NODES}`,
    runtimeClassName: "kata-remote",
    readinessGates: [{ conditionType: VM_READY_CONDITION }],
    containers: [{ name: "app", image: "busybox", resources: { requests: { [VM_RESOURCE]: "1" }, limits: { [VM_RESOURCE]: "1" } } }],
    terminationGracePeriodSeconds: 0,
  },
});

/** peerpods' own process metrics (prom-client defaults) from /metrics. */
async function processMetrics(metricsPort: number): Promise<{ cpuSeconds: number; rssMiB: number; heapMiB: number; at: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const value = (name: string): number => Number(/^(\S+) (\S+)$/m.exec(text.split("\n").find((line) => line.startsWith(`${name} `)) ?? "")?.[2] ?? NaN);
  return {
    cpuSeconds: value("process_cpu_seconds_total"),
    rssMiB: value("process_resident_memory_bytes") / 2 ** 20,
    heapMiB: value("nodejs_heap_size_used_bytes") / 2 ** 20,
    at: Date.now(),
  };
}

async function readyPods(core: CoreV1Api): Promise<number> {
  let ready = 0;
  let _continue: string | undefined;
  do {
    const page = await core.listNamespacedPod({ namespace: NAMESPACE, limit: 2000, _continue });
    ready += page.items.filter((pod) => pod.status?.conditions?.some((c) => c.type === VM_READY_CONDITION && c.status === "True" && c.reason === VM_READY_REASON)).length;
    _continue = page.metadata?._continue;
  } while (_continue);
  return ready;
}

async function createPods(core: CoreV1Api): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < PODS) await core.createNamespacedPod({ namespace: NAMESPACE, body: boundPeerPod(next++) });
  };
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "perf-scale-"));
  const cluster = await startCluster();
  let stopServe: (() => Promise<void>) | undefined;
  try {
    const core = cluster.kc.makeApiClient(CoreV1Api);
    const manifests = await loadManifests(LOCAL_OVERLAY_DIR);
    await applyObjects(cluster.kc, manifests.filter((o) => o.kind === "Namespace" || o.kind === "CustomResourceDefinition" || o.kind === "RuntimeClass"));
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    const started = Date.now();
    for (let i = 0; i < NODES; i += 100) await cluster.addNodes(Array.from({ length: Math.min(100, NODES - i) }, (_, j) => ({ name: `scale-node-${i + j}` })));
    console.log(`${NODES} KWOK nodes ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });

    const policyFile = join(dir, "policy.json");
    await writeFile(policyFile, JSON.stringify({ nodes: { vmsPerNode: Math.ceil(PODS / NODES) + 1 }, provider: { name: "sim", sim: { createMs: 0, readyMs: 0, deleteMs: 0, inventoryFile: join(dir, "inventory.json") } } }));
    const certs = await localCerts();
    const [webhookPort, extenderPort, metricsPort] = (await freePorts(3)) as [number, number, number];
    const serving = await startServe([
      `--kubeconfig=${cluster.kubeconfigPath}`,
      "--parts=webhook,extender,advertiser,worker",
      "--no-leader-elect",
      `--policy-file=${policyFile}`,
      `--tls-cert=${certs.files.cert}`,
      `--tls-key=${certs.files.key}`,
      "--bind-address=127.0.0.1",
      `--webhook-port=${webhookPort}`,
      `--extender-port=${extenderPort}`,
      `--metrics-port=${metricsPort}`,
      `--state-dir=${dir}`,
      "--log-level=info",
    ], { nodeArgs: process.env.CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.CPU_PROF_DIR}`] : [], logFile: process.env.LOG_FILE ?? join(dir, "peerpods.log") });
    stopServe = serving.stop;
    const idle = await processMetrics(metricsPort);

    const createStart = Date.now();
    await createPods(core);
    const createdS = (Date.now() - createStart) / 1000;
    console.log(`${PODS} pods created in ${createdS.toFixed(0)} s`);
    await waitFor(async () => (await readyPods(core)) >= PODS, { timeoutMs: 1_800_000, intervalMs: 5000, message: `${PODS} pods with a ready VM` });
    const convergedS = (Date.now() - createStart) / 1000;
    console.log(`all ${PODS} VMs ready ${convergedS.toFixed(0)} s after the first create; ${STEADY_S} s of steady state follow`);

    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const before = await processMetrics(metricsPort);
    await new Promise((resolve) => setTimeout(resolve, STEADY_S * 1000));
    const after = await processMetrics(metricsPort);
    const steadyCpu = (after.cpuSeconds - before.cpuSeconds) / ((after.at - before.at) / 1000);
    const row = {
      nodes: NODES,
      "peer pods": PODS,
      "rss MiB (idle)": Math.round(idle.rssMiB),
      "rss MiB": Math.round(after.rssMiB),
      "heap MiB": Math.round(after.heapMiB),
      "steady cpu (cores)": Number(steadyCpu.toFixed(3)),
      "converge s": Math.round(convergedS),
    };
    printTable(`scale: peerpods (all cluster parts, sim provider) with ${NODES} KWOK nodes and ${PODS} peer pods (load average ${loadavg()[0]!.toFixed(1)})`, [row]);
    await writeResults("scale", { ...row, createSeconds: createdS, steadySeconds: STEADY_S, loadAverage: loadavg(), targets: { rssMiB: 300, steadyCpuCores: "near 0" } });
  } finally {
    await stopServe?.();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main);
