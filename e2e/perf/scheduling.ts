/**
 * `npm run perf:scheduling`: binding throughput of the real kube-scheduler on the local control plane
 * (KWOK nodes), for pods asking for one `kata.peerpods.io/vm` slot, in one run:
 *   plain     — no extender
 *   noop      — through a no-op extender (e2e/perf/noop-server.ts: passes every node, scores 0)
 *   peerpods  — through peerpods' extender (manifests/scheduler config: filter + prioritize, nodeCacheCapable)
 * each at the scheduler's default client QPS (50) and at qps/burst 5000/10000. A last run schedules
 * pods that do not ask for the resource under peerpods' extender and counts its calls (must be 0:
 * managedResources). Pods of a run carry their own schedulerName, are all created first, and the
 * scheduler is restarted with a profile of that name; throughput = bindings / (last − first binding),
 * from watch arrival times. Everything (etcd, apiserver, scheduler, KWOK, peerpods) shares this machine.
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
import { startNoopServer, type NoopServer } from "./lib/noop.js";

const NODES = Number(process.env.NODES ?? 100);
const PODS = Number(process.env.PODS ?? 500);
// one run at 5,000 QPS swings by ±30 %: the table gives medians over runs
const REPEATS = Number(process.env.REPEATS ?? 3);
const HIGH_QPS = 5000;
const VM_RESOURCE = "kata.peerpods.io/vm";
const NAMESPACE = "perf-scheduling";
const CREATE_CONCURRENCY = 32;

type Extender = "plain" | "noop" | "peerpods";
interface Setting {
  extender: Extender;
  qps: number | undefined;
}

interface Extenders {
  noopUrl: string;
  peerpods: Peerpods;
  caBundle: string;
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

/** The shipped scheduler configuration's extender block, pointed at `url`. */
async function extenderBlock(url: string, caBundle: string): Promise<Record<string, unknown>> {
  const shipped = parseYaml(await readFile(join(MANIFESTS_DIR, "scheduler", "kube-scheduler-config.yaml"), "utf8")) as { extenders: Record<string, unknown>[] };
  return { ...shipped.extenders[0], urlPrefix: url, tlsConfig: { caData: caBundle } };
}

async function schedulerConfig(dir: string, schedulerName: string, setting: Setting, extenders: Extenders): Promise<string> {
  const url = setting.extender === "noop" ? extenders.noopUrl : `https://127.0.0.1:${extenders.peerpods.extenderPort}`;
  const config = {
    apiVersion: "kubescheduler.config.k8s.io/v1",
    kind: "KubeSchedulerConfiguration",
    clientConnection: setting.qps ? { qps: setting.qps, burst: setting.qps * 2 } : {},
    profiles: [{ schedulerName }],
    ...(setting.extender === "plain" ? {} : { extenders: [await extenderBlock(url, extenders.caBundle)] }),
  };
  const file = join(dir, `${schedulerName}.yaml`);
  await writeFile(file, stringify(config));
  return file;
}

async function extenderCalls(peerpods: Peerpods): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith("peerpods_extender_requests_total{"))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
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
async function run(cluster: Cluster, dir: string, setting: Setting, extenders: Extenders, asksForVm = true): Promise<{ podsPerSecond: number; seconds: number; extenderCalls: number }> {
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const schedulerName = `perf-${++runs}`;
  const configFile = await schedulerConfig(dir, schedulerName, setting, extenders);
  await createPods(core, Array.from({ length: PODS }, (_, i) => peerPod(`p-${runs}-${i}`, schedulerName, asksForVm)));
  const watch = await watchPodMarks(cluster.kc, NAMESPACE, { bound: (pod) => Boolean(pod.spec?.nodeName) });
  const callsBefore = await extenderCalls(extenders.peerpods);
  try {
    await cluster.restartScheduler(configFile);
    await waitFor(() => watch.marks.bound.size >= PODS, { timeoutMs: 600_000, intervalMs: 200, message: `${PODS} bindings (${setting.extender}, qps ${setting.qps ?? "default"})` });
    const times = [...watch.marks.bound.values()].sort((a, b) => a - b);
    const seconds = (times.at(-1)! - times[0]!) / 1000;
    return { podsPerSecond: (PODS - 1) / seconds, seconds, extenderCalls: (await extenderCalls(extenders.peerpods)) - callsBefore };
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
  const peerpods = await startPeerpods({ kubeconfig: cluster.kubeconfigPath, args: ["--parts=extender", `--policy-file=${policyFile}`, "--log-level=info"] });
  const certs = await localCerts();
  noop = await startNoopServer({ dir, certFile: certs.files.cert, keyFile: certs.files.key });
  return { noopUrl: noop.url, peerpods, caBundle: certs.caBundle };
}

let noop: NoopServer | undefined;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "perf-scheduling-"));
  const cluster = await startCluster();
  let extenders: Extenders | undefined;
  try {
    extenders = await prepare(cluster, dir);
    const loadBefore = loadavg()[0]!;
    const settings: Setting[] = [];
    for (const qps of [undefined, HIGH_QPS]) for (const extender of ["plain", "noop", "peerpods"] as const) settings.push({ extender, qps });
    const measured = new Map<Setting, number[]>(settings.map((s) => [s, []]));
    for (let repeat = 1; repeat <= REPEATS; repeat++) {
      for (const setting of settings) {
        const result = await run(cluster, dir, setting, extenders);
        console.log(`repeat ${repeat}: ${setting.extender}, qps ${setting.qps ?? 50}: ${result.podsPerSecond.toFixed(0)} pods/s (${result.extenderCalls} peerpods extender calls)`);
        measured.get(setting)!.push(result.podsPerSecond);
      }
    }
    const plainPods = await run(cluster, dir, { extender: "peerpods", qps: HIGH_QPS }, extenders, false);
    const rate = (extender: Extender, qps: number | undefined): number => median(measured.get(settings.find((s) => s.extender === extender && s.qps === qps)!)!);
    const rows: Row[] = settings.map((s) => ({
      "client qps": s.qps ?? 50,
      extender: s.extender,
      "pods/s (median)": Math.round(rate(s.extender, s.qps)),
      "÷ plain": Number((rate(s.extender, s.qps) / rate("plain", s.qps)).toFixed(2)),
      "÷ noop": s.extender === "plain" ? "" : Number((rate(s.extender, s.qps) / rate("noop", s.qps)).toFixed(2)),
    }));
    printTable(`scheduling: ${PODS} pods asking for one VM slot, ${NODES} KWOK nodes, ${REPEATS} run(s) each (load average ${loadBefore.toFixed(1)} before)`, rows);
    console.log(`pods without the VM resource under peerpods' extender: ${Math.round(plainPods.podsPerSecond)} pods/s, ${plainPods.extenderCalls} extender calls (must be 0)`);
    await writeResults("scheduling", {
      nodes: NODES,
      pods: PODS,
      repeats: REPEATS,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg()[0],
      rows,
      runs: settings.map((s) => ({ ...s, podsPerSecond: measured.get(s) })),
      podsWithoutVm: plainPods,
      targets: { peerpodsOverNoopHighQps: 0.9, peerpodsOverPlainDefaultQps: 0.95, extenderCallsForPlainPods: 0 },
    });
  } finally {
    await noop?.process.stop();
    await extenders?.peerpods.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main);
