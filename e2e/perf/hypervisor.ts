/**
 * `npm run perf:hypervisor`: how long the Kata shim waits for its pod's VM. On the local control plane,
 * peerpods runs the hypervisor and worker parts with the qemu provider, and containerd's Go ttrpc client
 * calls CreateVM then StartVM as the shim does; we time from the CreateVM call to StartVM's return (the
 * agent is reachable through the sandbox's socket), checked by a health call through that socket.
 *   cold: a pod the cluster does not know, so CreateVM boots the VM (what cloud-api-adaptor always does);
 *   bound: a pod bound to a node whose VM the worker started at bind time, so CreateVM attaches.
 * One cold run first warms the provider up (its accelerator probe boot) and is not counted.
 * RUNS (default 10) of each, one at a time; results go to e2e/perf/results/hypervisor.json.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../../src/kube/peerpod.js";
import { startCluster } from "../cluster/cluster.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR } from "../support/manifests.js";
import { startPeerpods } from "../support/peerpods.js";
import { serviceAccountKubeconfig } from "../support/tokens.js";
import { waitFor } from "../support/wait.js";
import { withAgent } from "../../src/runtime/agent-client.js";
import { buildPeer, shimAnnotations, TtrpcPeer } from "../ttrpc-peer/peer.js";
import { median, percentile, printTable, writeResults, type Row, runBenchmark } from "./lib/report.js";
import { trackedTempDir } from "../support/leftovers.js";

const RUNS = Number(process.env.RUNS ?? 10);
const NAMESPACE = "hv-perf";
const NODE = "hv-perf-node";
const CLUSTER_ID = "hv-perf";
const BOOT_TIMEOUT_S = 300;

interface Sample {
  createMs: number;
  startMs: number;
  totalMs: number;
}

const say = (message: string): void => console.log(`[perf:hypervisor] ${message}`);

async function main(): Promise<void> {
  const binary = await buildPeer();
  const dir = trackedTempDir("hv-perf-");
  const cluster = await startCluster();
  try {
    const core = cluster.kc.makeApiClient(CoreV1Api);
    const custom = cluster.kc.makeApiClient(CustomObjectsApi);
    await applyObjects(cluster.kc, (await loadManifests(LOCAL_OVERLAY_DIR)).filter((o) => o.kind !== "MutatingWebhookConfiguration"));
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });
    await cluster.addNodes([{ name: NODE }]);
    const policyFile = join(dir, "policy.json");
    await writeFile(policyFile, JSON.stringify({ instanceTypes: [{ name: "small", vcpus: 1, memoryMiB: 256 }], provider: { name: "qemu", qemu: { maxVMs: 4 } } }));
    const kubeconfig = await serviceAccountKubeconfig(cluster.kc, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster.caFile);
    const socket = join(dir, "hypervisor.sock");
    const peerpods = await startPeerpods({
      kubeconfig,
      args: ["--parts=hypervisor,worker", `--policy-file=${policyFile}`, `--cluster-id=${CLUSTER_ID}`, "--no-leader-elect", "--log-level=info", `--hypervisor-socket=${socket}`, `--pods-dir=${join(dir, "pods")}`],
    });
    const peer = new TtrpcPeer(binary, socket);

    /** CreateVM + StartVM for `pod` and a health call through the agent socket; returns the timings and the sandbox id. */
    const open = async (pod: string): Promise<Sample & { id: string }> => {
      const id = randomBytes(32).toString("hex");
      const created = await peer.createVM(id, shimAnnotations(NAMESPACE, pod, "small"));
      if (created.code) throw new Error(`CreateVM: ${created.code} ${created.message}`);
      const started = await peer.startVM(id, BOOT_TIMEOUT_S);
      if (started.code) throw new Error(`StartVM: ${started.code} ${started.message}`);
      const health = await withAgent(created.agentSocketPath!, (agent) => agent.health());
      if (!health.ready) throw new Error(`the agent through the socket is not ready: ${JSON.stringify(health)}`);
      return { id, createMs: created.ms, startMs: started.ms, totalMs: created.ms + started.ms };
    };
    const stop = async (id: string): Promise<void> => {
      const stopped = await peer.stopVM(id);
      if (stopped.code) throw new Error(`StopVM: ${stopped.code} ${stopped.message}`);
    };

    say("warm-up: the provider's first VM (accelerator probe), not counted");
    await stop((await open("hv-warmup")).id);
    const cold: Sample[] = [];
    for (let i = 0; i < RUNS; i++) {
      const sample = await open(`hv-cold-${i}`);
      await stop(sample.id);
      cold.push(sample);
      say(`cold ${i + 1}/${RUNS}: ${sample.totalMs.toFixed(0)} ms`);
    }
    const bound: Sample[] = [];
    for (let i = 0; i < RUNS; i++) {
      const name = `hv-bound-${i}`;
      await core.createNamespacedPod({ namespace: NAMESPACE, body: { metadata: { name }, spec: { runtimeClassName: "kata-remote", nodeName: NODE, containers: [{ name: "app", image: "busybox" }] } } });
      await waitFor(
        async () => ((await custom.getNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE, name })) as PeerPod).status?.phase === "Ready",
        { timeoutMs: BOOT_TIMEOUT_S * 1000, intervalMs: 200, message: `the worker to make ${name}'s VM ready` },
      );
      const sample = await open(name);
      // As on a node: the pod goes, then the kubelet stops its sandbox.
      await core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 });
      await stop(sample.id);
      bound.push(sample);
      say(`bound ${i + 1}/${RUNS}: ${sample.totalMs.toFixed(0)} ms`);
    }
    const accelerator = peerpods.logs().find((line) => line.msg === "qemu VM started")?.accelerator ?? "unknown";
    await peerpods.stop();

    const summary = (name: string, samples: Sample[]): Row => ({
      case: name,
      runs: samples.length,
      "median ms": median(samples.map((s) => s.totalMs)),
      "p90 ms": percentile(samples.map((s) => s.totalMs), 90),
      "min ms": Math.min(...samples.map((s) => s.totalMs)),
      "max ms": Math.max(...samples.map((s) => s.totalMs)),
      "CreateVM median ms": median(samples.map((s) => s.createMs)),
      "StartVM median ms": median(samples.map((s) => s.startMs)),
    });
    const rows = [summary("cold (CreateVM boots the VM)", cold), summary("bound (worker started the VM at bind)", bound)];
    printTable(`CreateVM → agent reachable (qemu, ${String(accelerator)})`, rows);
    await writeResults("hypervisor", { accelerator, rows, cold, bound });
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main);
