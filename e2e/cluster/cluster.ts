import { CoreV1Api, KubeConfig, type V1Node } from "@kubernetes/client-node";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeKubeconfig } from "./kubeconfig.js";
import { kubeletReadinessStages } from "./kwok-readiness.js";
import { CONTROL_PLANE_BINARIES, binaryPath, kwokBinary, kwokStagesFile } from "./paths.js";
import { createPki, type ClusterPki } from "./pki.js";
import { atExit, startProcess, tail, type ManagedProcess } from "./process.js";
import { schedulerConfigurationFile } from "./scheduler-config.js";
import { realNodeName } from "./node/paths.js";
import { freePorts } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

export interface Cluster {
  /** Admin kubeconfig (token auth), for client-node and kubectl. */
  kubeconfigPath: string;
  /** The loaded admin config. */
  kc: KubeConfig;
  /** https://127.0.0.1:PORT */
  server: string;
  /** The apiserver's CA. */
  caFile: string;
  /** The kubelet identity of this host's real node (`startRealNode`): its name and its token (system:node:NAME). */
  nodeCredentials: { name: string; token: string };
  dataDir: string;
  logsDir: string;
  /** The apiserver's audit log (JSON lines, Metadata level): every request of a ServiceAccount in peerpods-system. */
  auditLogPath: string;
  /** (Re)starts kube-scheduler with a KubeSchedulerConfiguration file (e.g. one with the peerpods extender); omitted = default config. */
  restartScheduler(configPath?: string): Promise<void>;
  /** The running kube-scheduler's Prometheus text (`GET /metrics`); needs `schedulerMetrics` in the options. */
  schedulerMetrics(): Promise<string>;
  restartApiserver(): Promise<void>;
  /** Creates KWOK-managed fake nodes (annotation kwok.x-k8s.io/node: fake) with labels; resolves when Ready. */
  addNodes(nodes: NodeRequest[]): Promise<void>;
  /** Log files of the running components, by name. */
  logFiles(): Record<string, string>;
  stop(): Promise<void>;
}

export interface NodeRequest {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface ClusterOptions {
  /** KubeSchedulerConfiguration file for the first scheduler start. */
  schedulerConfig?: string;
  /** kube-scheduler client QPS (burst 2×); omitted = its default of 50. */
  qps?: number;
  /** Serve kube-scheduler's /metrics (HTTPS on a free loopback port, no authorization for that path). */
  schedulerMetrics?: boolean;
}

export const KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node";
const SERVICE_CIDR = "10.96.0.0/16";
const POD_CIDR = "10.128.0.0/14";
/** Controllers a test cluster needs: GC, namespaces, service accounts, node health, and the workload basics. */
const CONTROLLERS = [
  "garbage-collector-controller",
  "namespace-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller",
  "node-lifecycle-controller",
  "taint-eviction-controller",
  "pod-garbage-collector-controller",
  "clusterrole-aggregation-controller",
  "deployment-controller",
  "replicaset-controller",
];
const READY_TIMEOUT_MS = 60_000;

/** Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK on free loopback ports. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await launch(options);
    } catch (error) {
      // a port found free can be taken by another process before the component binds it
      if (attempt === 3 || !(error as Error).message.includes("address already in use")) throw error;
    }
  }
}

async function launch(options: ClusterOptions): Promise<Cluster> {
  const missing = [...CONTROL_PLANE_BINARIES.map(binaryPath), kwokBinary(), kwokStagesFile()].filter((file) => !existsSync(file));
  if (missing.length) throw new Error(`not built: ${missing.join(", ")}; run \`npm run cluster:build\``);
  const dataDir = await mkdtemp(join(tmpdir(), "peerpods-cluster-"));
  const logsDir = join(dataDir, "logs");
  await mkdir(logsDir);
  const forgetDataDir = atExit(() => rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 }));
  const running = new Map<string, ManagedProcess>();
  const start = (name: string, command: string, args: string[]): ManagedProcess => {
    const component = startProcess({ name, command, args, logFile: join(logsDir, `${name}.log`) });
    running.set(name, component);
    return component;
  };
  const stopAll = async (): Promise<void> => {
    // the data is thrown away: no need to wait for graceful shutdowns
    await Promise.all([...running.values()].map((p) => p.stop(1000)));
    running.clear();
    forgetDataDir();
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    // the token file is read once, at the apiserver's start: the real node's identity exists from the beginning
    const nodeName = realNodeName();
    const pki = await createPki(join(dataDir, "pki"), [nodeName]);
    const [etcdClient, etcdPeer, apiserverPort] = await freePorts(3);
    const server = `https://127.0.0.1:${apiserverPort}`;
    const kubeconfigPath = await writeKubeconfig(join(dataDir, "kubeconfig"), { server, caFile: pki.caFile, token: pki.adminToken, user: "admin" });
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcd = start("etcd", binaryPath("etcd"), etcdArgs(join(dataDir, "etcd"), etcdUrl, `http://127.0.0.1:${etcdPeer}`));
    const auditLogPath = join(logsDir, "audit.log");
    const auditPolicyPath = join(dataDir, "audit-policy.yaml");
    await writeFile(auditPolicyPath, AUDIT_POLICY);
    const apiserverArgs = [...kubeApiserverArgs(pki, etcdUrl, apiserverPort!, join(dataDir, "apiserver")), `--audit-policy-file=${auditPolicyPath}`, `--audit-log-path=${auditLogPath}`];
    const startApiserver = async (): Promise<void> => {
      const apiserver = start("kube-apiserver", binaryPath("kube-apiserver"), apiserverArgs);
      await untilExit([etcd, apiserver], waitReadyz(server, pki));
    };
    await startApiserver();

    const schedulerConfigPath = join(dataDir, "kube-scheduler.yaml");
    let schedulerMetricsPort: number | undefined;
    const startScheduler = async (configPath?: string): Promise<void> => {
      await writeFile(schedulerConfigPath, await schedulerConfigurationFile(configPath, { kubeconfig: kubeconfigPath, qps: options.qps }));
      const logFile = join(logsDir, "kube-scheduler.log");
      const logged = existsSync(logFile) ? statSync(logFile).size : 0;
      schedulerMetricsPort = options.schedulerMetrics ? (await freePorts(1))[0] : undefined;
      const serving = schedulerMetricsPort
        ? [`--secure-port=${schedulerMetricsPort}`, "--bind-address=127.0.0.1", "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"]
        : ["--secure-port=0"];
      // -v=2 logs every binding ("Successfully bound pod to node")
      const scheduler = start("kube-scheduler", binaryPath("kube-scheduler"), [`--config=${schedulerConfigPath}`, ...serving, "-v=2"]);
      // it logs this only once its configuration has been loaded and validated
      const started = waitFor(() => readFileSync(logFile).subarray(logged).includes("Starting Kubernetes Scheduler"), { timeoutMs: 20_000, message: "kube-scheduler to start" });
      await untilExit([scheduler], started);
    };
    start("kube-controller-manager", binaryPath("kube-controller-manager"), controllerManagerArgs(kubeconfigPath, pki));
    await startScheduler(options.schedulerConfig);
    // KWOK's fast stages, with pod readiness as the kubelet computes it: Ready only once every readiness gate is True
    const stagesPath = join(dataDir, "kwok-stages.yaml");
    await writeFile(stagesPath, kubeletReadinessStages(await readFile(kwokStagesFile(), "utf8")));
    start("kwok", kwokBinary(), kwokArgs(kubeconfigPath, stagesPath));

    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    await untilExit([running.get("kube-controller-manager")!], waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: "default" }), { timeoutMs: READY_TIMEOUT_MS, message: "the default ServiceAccount" }));

    return {
      kubeconfigPath,
      kc,
      server,
      caFile: pki.caFile,
      nodeCredentials: { name: nodeName, token: pki.nodeTokens[nodeName]! },
      dataDir,
      logsDir,
      auditLogPath,
      async restartScheduler(configPath) {
        await running.get("kube-scheduler")?.stop();
        await startScheduler(configPath);
      },
      async schedulerMetrics() {
        if (!schedulerMetricsPort) throw new Error("kube-scheduler serves no metrics: start the cluster with schedulerMetrics");
        return getText(`https://127.0.0.1:${schedulerMetricsPort}/metrics`);
      },
      async restartApiserver() {
        await running.get("kube-apiserver")?.stop(2000);
        await startApiserver();
      },
      addNodes: (nodes) => addNodes(core, nodes),
      logFiles: () => Object.fromEntries([...running.values()].map((p) => [p.name, p.logFile])),
      stop: stopAll,
    };
  } catch (error) {
    const logs = [...running.values()].map((p) => `--- ${p.name} (${p.logFile})\n${tail(p.logFile, 20)}`).join("\n");
    await stopAll();
    throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
  }
}

function etcdArgs(dataDir: string, clientUrl: string, peerUrl: string): string[] {
  return [
    "--name=default",
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    // test data is thrown away: durability costs time and nothing else
    "--unsafe-no-fsync",
    "--log-level=warn",
  ];
}

/** Records who called what (not bodies) for peerpods' ServiceAccounts only, so RBAC can be checked against real use. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts:peerpods-system"]
  - level: None
`;

function kubeApiserverArgs(pki: ClusterPki, etcdUrl: string, port: number, certDir: string): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${port}`,
    // the endpoint reconciler refuses a loopback advertise address
    "--endpoint-reconciler-type=none",
    `--cert-dir=${certDir}`,
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    `--token-auth-file=${pki.tokenFile}`,
    // kubelets act as system:node:NAME: the Node authorizer and NodeRestriction keep each to its own node
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--allow-privileged=true",
    "--profiling=false",
  ];
}

function controllerManagerArgs(kubeconfig: string, pki: ClusterPki): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    "--leader-elect=false",
    "--secure-port=0",
    `--controllers=${CONTROLLERS.join(",")}`,
    `--root-ca-file=${pki.caFile}`,
    `--service-account-private-key-file=${pki.serviceAccountKey}`,
    // notice a node going away within seconds, not the production minute
    "--node-monitor-period=1s",
    "--node-monitor-grace-period=40s",
    "--kube-api-qps=200",
    "--kube-api-burst=400",
    "--profiling=false",
  ];
}

function kwokArgs(kubeconfig: string, stagesFile: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--config=${stagesFile}`,
    `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
    "--node-lease-duration-seconds=40",
    `--cidr=${POD_CIDR}`,
    "--node-ip=127.0.0.1",
  ];
}

async function addNodes(core: CoreV1Api, nodes: NodeRequest[]): Promise<void> {
  await Promise.all(
    nodes.map((node) =>
      core.createNode({
        body: {
          metadata: { name: node.name, labels: { "kubernetes.io/hostname": node.name, ...node.labels }, annotations: { ...node.annotations, [KWOK_NODE_ANNOTATION]: "fake" } },
          spec: {},
        },
      }),
    ),
  );
  await waitSchedulable(core, nodes.map((n) => n.name));
}

/** Resolves once every named node is Ready and untainted. */
export async function waitSchedulable(core: CoreV1Api, nodeNames: string[], timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const names = new Set(nodeNames);
  await waitFor(
    async () => {
      const { items } = await core.listNode();
      const ready = new Set(items.filter(schedulable).map((node) => node.metadata?.name));
      const waiting = [...names].filter((name) => !ready.has(name));
      if (waiting.length) throw new Error(`not yet: ${waiting.join(", ")}`);
      return true;
    },
    { timeoutMs, intervalMs: 100, message: `nodes ${[...names].join(", ")} to be Ready and untainted` },
  );
}

/** Ready, and the node lifecycle controller has lifted its not-ready taint. */
function schedulable(node: V1Node): boolean {
  const ready = node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
  const tainted = node.spec?.taints?.some((t) => t.key.startsWith("node.kubernetes.io/"));
  return Boolean(ready) && !tainted;
}

/** `waiting`, failed early with the end of a component's log when one of `components` exits first. */
export async function untilExit<T>(components: ManagedProcess[], waiting: Promise<T>): Promise<T> {
  const exits = components.map((component) =>
    component.exited.then((status) => {
      throw new Error(`${component.name} exited (${status}) while starting:\n${tail(component.logFile, 15)}`);
    }),
  );
  return Promise.race([waiting, ...exits]);
}

async function waitReadyz(server: string, pki: ClusterPki): Promise<void> {
  const ca = readFileSync(pki.caFile);
  await waitFor(() => getText(`${server}/readyz`, { ca, token: pki.adminToken }).then(() => true), { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, message: `${server}/readyz` });
}

/** GET of a loopback HTTPS endpoint; without `ca` the server's certificate is not checked (kube-scheduler's is self-signed in memory). */
function getText(url: string, { ca, token }: { ca?: Buffer; token?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const req = request(url, { ...(ca ? { ca } : { rejectUnauthorized: false }), headers, timeout: 2000 }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body.slice(-300)}`))));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
