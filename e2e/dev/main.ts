/**
 * `npm run dev`: the whole thing on this machine. Builds (or reuses) the control plane, the real
 * node and the pod VM image, starts a local control plane with this host's real node (kubelet,
 * containerd; labelled for peer pods) and two KWOK nodes, applies the local overlay, starts peerpods
 * (webhook, extender, advertiser as the real kubelet's device plugin, worker; qemu provider) with
 * kube-scheduler pointed at its extender, creates a sample peer pod and shows what happens to it
 * until it is Ready with its real VM; then what its container printed in the VM and a `kubectl exec`
 * answer; then a status line until Ctrl-C, which tears everything down. The node's containerd runs
 * the sample pod's handler `peerpods` with containerd-shim-peerpods-v2, which asks peerpods'
 * hypervisor part for the VM the worker booted and runs the container in it.
 * `--once`: stop once the sample pod is Ready (for CI).
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import { startCluster, type Cluster } from "../cluster/cluster.js";
import { startRealNode, type RealNode } from "../cluster/node/node.js";
import { atExit, onFirstSignal, tail } from "../cluster/process.js";
import { localCerts } from "../support/certs.js";
import { loadManifests, LOCAL_OVERLAY_DIR, MANIFESTS_DIR } from "../support/manifests.js";
import type { Peerpods } from "../support/peerpods.js";
import { killMentioning, PEER_LABEL, PEERPODS_RUNTIME_CLASS, peerpodsContainerd, servePeerpodsForNode, untilWebhookAdmits } from "../support/peerpods-node.js";
import { createNamespace } from "../support/suite.js";
import { waitFor } from "../support/wait.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../../src/kube/peerpod.js";
import { parsePolicy } from "../../src/policy/schema.js";
import { inVmLines, readFromVm, SAMPLE_SCRIPT } from "./in-vm.js";
import { buildControlPlane, buildPodVmImage, ensureHostPackages } from "./prepare.js";
import { formatElapsed, printLine, Steps } from "./progress.js";
import { admission, progressLines, statusLine, type Milestone, type Snapshot } from "./timeline.js";

const ONCE = process.argv.includes("--once");
const NAMESPACE = "demo";
/** KWOK nodes, not labelled for peer pods: the extender's filter says why they do not fit. */
const KWOK_NODES = [{ name: "dev-node-1" }, { name: "dev-node-2" }];
const READY_TIMEOUT_MS = 5 * 60_000;
const RUNTIME_CLASS = PEERPODS_RUNTIME_CLASS;
const SHIM = "containerd-shim-peerpods-v2";
const TICK_MS = 300;

const SAMPLE_POD: V1Pod = {
  metadata: { name: "hello", namespace: NAMESPACE },
  spec: {
    runtimeClassName: RUNTIME_CLASS,
    containers: [
      {
        name: "app",
        image: "busybox",
        command: ["sh", "-c", SAMPLE_SCRIPT],
        // the node's images are local: there is no registry to pull from
        imagePullPolicy: "IfNotPresent",
        resources: { requests: { cpu: "750m", memory: "384Mi" } },
      },
    ],
  },
};

interface Running {
  workDir: string;
  /** The hypervisor part's sandbox folders: short, for the 64-character sandbox ids' agent sockets. */
  podsDir?: string;
  cluster?: Cluster;
  node?: RealNode;
  peerpods?: Peerpods;
}

const started = Date.now();
const print = printLine;
const printMilestone = ({ label, text }: Milestone): void => print(`  +${formatElapsed(Date.now() - started).padStart(6)}  ${label.padEnd(11)} ${text}`);

async function startLocalCluster(running: Running): Promise<{ cluster: Cluster; node: RealNode }> {
  if (process.getuid?.() !== 0) throw new Error("the real node (kubelet, containerd) needs root: run npm run dev as root");
  const cluster = await startCluster();
  running.cluster = cluster;
  await cluster.addNodes(KWOK_NODES);
  const node = await startRealNode(cluster, { labels: PEER_LABEL, containerd: await peerpodsContainerd(hypervisorSocket(running)) });
  running.node = node;
  return { cluster, node };
}

const hypervisorSocket = (running: Running): string => join(running.workDir, "hypervisor.sock");

/** kube-scheduler's configuration from manifests/scheduler/ with the extender on this host. */
async function schedulerConfig(workDir: string, peerpods: Peerpods): Promise<string> {
  const config = parseYaml(await readFile(join(MANIFESTS_DIR, "scheduler", "kube-scheduler-config.yaml"), "utf8")) as { extenders: { urlPrefix: string; tlsConfig: { caData: string } }[] };
  for (const extender of config.extenders) {
    extender.urlPrefix = `https://127.0.0.1:${peerpods.extenderPort}`;
    extender.tlsConfig.caData = peerpods.caBundle;
  }
  const file = join(workDir, "kube-scheduler.yaml");
  await writeFile(file, stringify(config));
  return file;
}

async function startPeerpodsOnHost(running: Running, kc: KubeConfig): Promise<string> {
  const cluster = running.cluster!;
  const node = running.node!;
  const parts = ["webhook", "extender", "advertiser", "worker", "hypervisor"];
  const { peerpods, podsDir, slots } = await servePeerpodsForNode(cluster, node, { workDir: running.workDir, hypervisorSocket: hypervisorSocket(running), parts });
  running.peerpods = peerpods;
  running.podsDir = podsDir;
  await cluster.restartScheduler(await schedulerConfig(running.workDir, peerpods));
  await createNamespace(kc.makeApiClient(CoreV1Api), NAMESPACE);
  await untilWebhookAdmits(kc, SAMPLE_POD);
  const certs = await localCerts();
  return `parts webhook, extender, advertiser (${node.name}'s device plugin), worker, hypervisor (for ${node.name}'s shim); VM slots: ${slots}\n  serving certificate ${certs.files.cert} (its CA is the webhook's caBundle and the extender's caData)`;
}

/** POSTs JSON over HTTPS to a server whose certificate is signed by `caBundle` (base64 PEM). */
function postJson(url: string, caBundle: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", ca: Buffer.from(caBundle, "base64"), headers: { "content-type": "application/json" }, timeout: 5000 }, (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${url}: ${res.statusCode} ${text}`))));
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: timeout`)));
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

/** Asks the extender which nodes it keeps for the pod, and why not the others. */
async function extenderVerdict(peerpods: Peerpods, pod: V1Pod, nodes: string[]): Promise<string> {
  type FilterResult = { NodeNames?: string[] | null; FailedNodes?: Record<string, string> | null; FailedAndUnresolvableNodes?: Record<string, string> | null };
  const result = (await postJson(`https://127.0.0.1:${peerpods.extenderPort}/filter`, peerpods.caBundle, { Pod: pod, Nodes: null, NodeNames: nodes })) as FilterResult;
  const refused = { ...result.FailedNodes, ...result.FailedAndUnresolvableNodes };
  return [`fit: ${(result.NodeNames ?? []).join(", ") || "none"}`, ...Object.entries(refused).map(([node, reason]) => `${node}: ${reason}`)].join("; ");
}

async function snapshot(core: CoreV1Api, custom: CustomObjectsApi, uid: string): Promise<Snapshot> {
  const [pod, record, events] = await Promise.all([
    core.readNamespacedPod({ name: SAMPLE_POD.metadata!.name!, namespace: NAMESPACE }).catch(() => undefined),
    custom
      .getNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE, name: SAMPLE_POD.metadata!.name! })
      .then((object) => object as PeerPod)
      .catch(() => undefined),
    core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: `involvedObject.uid=${uid}` }).then((list) => list.items),
  ]);
  return { pod, record, events };
}

interface SampleReady {
  uid: string;
  createdAt: number;
  /** The VM's folder (console.log, qemu.log). */
  vmDir: string;
  instanceType: string;
}

/** Creates the sample pod and reports each step until it is Ready. */
async function followSamplePod(running: Running, kc: KubeConfig): Promise<SampleReady> {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const peerpods = running.peerpods!;
  const createdAt = Date.now();
  const created = await core.createNamespacedPod({ namespace: NAMESPACE, body: SAMPLE_POD });
  print(`\nsample peer pod ${NAMESPACE}/${created.metadata?.name} (runtimeClassName ${RUNTIME_CLASS}, busybox: ${SAMPLE_SCRIPT}; requests cpu 750m, memory 384Mi):`);
  printMilestone(admission(created));
  const reported = new Set<string>();
  const consoleLog = (id: string): string => join(peerpods.stateDir, "qemu", id, "console.log");
  const nodeNames = [running.node!.name, ...KWOK_NODES.map((n) => n.name)];
  return waitFor(
    async () => {
      const now = await snapshot(core, custom, created.metadata!.uid!);
      for (const line of progressLines(now, reported, consoleLog)) {
        printMilestone(line);
        if (line.label === "scheduled") printMilestone({ label: "", text: `the extender's filter over all nodes: ${await extenderVerdict(peerpods, now.pod!, nodeNames)}` });
      }
      const instance = now.record?.status?.instanceID;
      const instanceType = now.record?.spec.instanceType;
      return reported.has("pod Ready") && instance && instanceType ? { uid: created.metadata!.uid!, createdAt, vmDir: join(peerpods.stateDir, "qemu", instance), instanceType } : undefined;
    },
    { timeoutMs: READY_TIMEOUT_MS, intervalMs: TICK_MS, message: "the sample pod to be Ready" },
  );
}

/** Prints what the sample container printed in its VM and a `kubectl exec` answer, beside the host's kernel and cores. */
async function showInVm(kc: KubeConfig, sample: SampleReady): Promise<void> {
  const policy = parsePolicy((await loadManifests(LOCAL_OVERLAY_DIR)).find((o) => o.kind === "PeerPodPolicy"));
  if (!policy.ok) throw new Error(`the local overlay's PeerPodPolicy: ${policy.errors.join("; ")}`);
  const instanceType = policy.spec.instanceTypes.find((type) => type.name === sample.instanceType);
  if (!instanceType) throw new Error(`instance type ${sample.instanceType} is not in the local overlay's catalog`);
  const result = await readFromVm(kc, { namespace: NAMESPACE, name: SAMPLE_POD.metadata!.name!, container: "app", createdAt: sample.createdAt });
  print("");
  for (const line of inVmLines(result, `${NAMESPACE}/${SAMPLE_POD.metadata!.name}`, { kernelRelease: release(), cpus: cpus().length }, instanceType)) print(line);
}

/** The status line until Ctrl-C: rewritten in place on a terminal, every 30 s elsewhere. */
function showStatus(kc: KubeConfig, uid: string): () => void {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const tty = process.stdout.isTTY;
  const timer = setInterval(
    () =>
      void snapshot(core, custom, uid).then(
        (now) => process.stdout.write(tty ? `\r\x1b[K${statusLine(now, formatElapsed(Date.now() - started))} · Ctrl-C stops` : `${statusLine(now, formatElapsed(Date.now() - started))}\n`),
        () => undefined,
      ),
    tty ? 1000 : 30_000,
  );
  return () => {
    clearInterval(timer);
    if (tty) process.stdout.write("\n");
  };
}

/** Deletes the sample pod (the worker deletes its VM), stops peerpods, the VMs' last traces, the control plane, the work folder. */
async function tearDown(running: Running): Promise<void> {
  const steps = new Steps(5);
  const { cluster, node, peerpods } = running;
  if (cluster && peerpods) {
    await steps.run("deleting the sample pod and its VM", async () => {
      const core = cluster.kc.makeApiClient(CoreV1Api);
      const custom = cluster.kc.makeApiClient(CustomObjectsApi);
      // its `sleep` ignores SIGTERM: no need to wait out the default grace period
      await core.deleteNamespacedPod({ name: SAMPLE_POD.metadata!.name!, namespace: NAMESPACE, gracePeriodSeconds: 1 }).catch(() => undefined);
      const gone = await waitFor(
        async () => {
          const { items } = (await custom.listNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE })) as { items: unknown[] };
          return items.length === 0;
        },
        { timeoutMs: 60_000, intervalMs: 250, message: "the worker to delete the VM" },
      ).catch(() => false);
      return gone ? "VM deleted by the worker" : "the worker did not delete the VM in time";
    }, (result) => result);
  }
  await steps.run("stopping peerpods", async () => {
    await peerpods?.stop();
    const killed = peerpods ? killMentioning(peerpods.stateDir) : 0;
    return killed ? `stopped; ${killed} leftover VM process(es) killed` : "stopped, no VM left";
  }, (result) => result);
  await steps.run("stopping the real node", async () => {
    await node?.stop();
    const left = node?.leftovers() ?? [];
    return left.length ? `left behind: ${left.join("; ")}` : "nothing left on the host";
  }, (result) => result);
  await steps.run("stopping the control plane", async () => cluster?.stop());
  await steps.run("removing the work folders", async () => {
    await rm(running.workDir, { recursive: true, force: true });
    if (running.podsDir) await rm(running.podsDir, { recursive: true, force: true });
  });
}

async function main(): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), "peerpods-dev-"));
  const running: Running = { workDir };
  atExit(() => killMentioning(workDir));
  let interrupted = false;
  let onInterrupt: () => void = () => undefined;
  const interruption = new Promise<void>((resolve) => (onInterrupt = resolve));
  onFirstSignal((signal) => {
    print(`\n${signal}: tearing down (again to kill everything at once)`);
    interrupted = true;
    onInterrupt();
  });
  const steps = new Steps(6);
  const work = (async () => {
    await steps.run("host packages (qemu)", ensureHostPackages, (result) => result);
    await steps.run("control plane and real node binaries", buildControlPlane, (result) => result);
    await steps.run("pod VM image", buildPodVmImage, (result) => result);
    const { cluster, node } = await steps.run(
      "starting etcd, kube-apiserver, controller-manager, scheduler, KWOK; the real node and 2 KWOK nodes",
      () => startLocalCluster(running),
      ({ cluster: c, node: n }) => `${c.server}; real node ${n.name} Ready in ${n.readyMs} ms (labelled for peer pods), KWOK nodes ${KWOK_NODES.map((k) => k.name).join(", ")}`,
    );
    const summary = await steps.run("applying the local overlay, starting peerpods, pointing kube-scheduler at its extender", () => startPeerpodsOnHost(running, cluster.kc), (text) => text);
    const peerpods = running.peerpods!;
    print(`\n  export KUBECONFIG=${cluster.kubeconfigPath}\n  kubectl get pods,peerpods -A\n  metrics: http://127.0.0.1:${peerpods.metricsPort}/metrics\n  peerpods log: ${peerpods.logFile}\n  ${summary}`);
    const sample = await steps.run("sample peer pod to Ready", () => followSamplePod(running, cluster.kc), () => "Ready");
    print(`\nthe sample pod's VM is a real qemu VM; its folder (console.log, qemu.log): ${sample.vmDir}`);
    print(`its container runs in that VM: ${node.name}'s containerd runs handler ${RUNTIME_CLASS} with ${SHIM}, which ships it to peerpods-agent in the VM`);
    await showInVm(cluster.kc, sample);
    return sample.uid;
  })();
  let failed = false;
  const uid = await Promise.race([work, interruption]).catch((error: unknown) => {
    failed = true;
    print(`\nnpm run dev failed: ${(error as Error).message}`);
    if (running.peerpods) print(`--- the end of the peerpods log:\n${tail(running.peerpods.logFile, 25)}`);
  });
  if (!failed && !ONCE && !interrupted && uid) {
    const stop = showStatus(running.cluster!.kc, uid);
    await interruption;
    stop();
  }
  await tearDown(running);
  print(failed ? "torn down after the failure above" : "all stopped and removed");
  process.exit(failed ? 1 : 0);
}

await main();
