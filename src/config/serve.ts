import { Option, type Command } from "commander";
import { LOG_LEVELS } from "../log/logger.js";
import { MAX_PODS_DIR_BYTES } from "../hypervisor/layout.js";
import { integer, listOf, oneOf, podsDir, port } from "./parsers.js";

export const PARTS = ["webhook", "extender", "advertiser", "worker", "hypervisor"] as const;
export type PartName = (typeof PARTS)[number];
export const DEFAULT_PARTS: PartName[] = ["webhook", "extender", "advertiser", "worker"];

export interface ServeConfig {
  parts: PartName[];
  bindAddress: string;
  webhookPort: number;
  extenderPort: number;
  metricsPort: number;
  tlsCert: string;
  tlsKey: string;
  /** When set, the extender requires a client certificate signed by this CA (the scheduler's). */
  extenderClientCa?: string;
  policyFile?: string;
  kubeconfig?: string;
  logLevel: (typeof LOG_LEVELS)[number];
  maxBodyBytes: number;
  shutdownGraceSeconds: number;
  clusterId: string;
  stateDir: string;
  workerConcurrency: number;
  gcInterval: number;
  gcGrace: number;
  providerQps: number;
  providerBurst: number;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  advertise: (typeof ADVERTISE_MODES)[number];
  devicePluginDir: string;
  nodeName?: string;
  hypervisorSocket: string;
  podsDir: string;
  /** peerpods-podnet, which ties a pod's network namespace to its VM (hypervisor part). */
  podnetBinary: string;
  /** The agent channel's CA, its key and the node side's client certificate (`peerpods agent-certs`); unset: plain TCP to agents. */
  agentTlsDir?: string;
}

export const ADVERTISE_MODES = ["node-status", "device-plugin"] as const;

/** Every `serve` flag, each also settable as PEERPODS_<FLAG_NAME>. */
export function addServeOptions(command: Command): Command {
  const opt = (flags: string, description: string, env: string): Option => new Option(flags, description).env(`PEERPODS_${env}`);
  return command
    .addOption(opt("--parts <list>", `comma-separated parts to run (${PARTS.join(", ")})`, "PARTS").argParser(listOf(PARTS)).default(DEFAULT_PARTS, DEFAULT_PARTS.join(",")))
    .addOption(opt("--bind-address <ip>", "address the servers listen on", "BIND_ADDRESS").default("0.0.0.0"))
    .addOption(opt("--webhook-port <port>", "HTTPS port of the admission webhook", "WEBHOOK_PORT").argParser(port).default(8443))
    .addOption(opt("--extender-port <port>", "HTTPS port of the scheduler extender", "EXTENDER_PORT").argParser(port).default(8444))
    .addOption(opt("--metrics-port <port>", "plain-HTTP port for /metrics, /healthz, /readyz", "METRICS_PORT").argParser(port).default(9090))
    .addOption(opt("--tls-cert <file>", "serving certificate (PEM), reloaded when it changes", "TLS_CERT").default("certs/tls.crt"))
    .addOption(opt("--tls-key <file>", "serving key (PEM), reloaded when it changes", "TLS_KEY").default("certs/tls.key"))
    .addOption(opt("--extender-client-ca <file>", "CA (PEM) whose client certificates the extender requires (mTLS with kube-scheduler); unset: no client auth", "EXTENDER_CLIENT_CA"))
    .addOption(opt("--policy-file <file>", "load the policy from this YAML/JSON file instead of the cluster", "POLICY_FILE"))
    .addOption(opt("--kubeconfig <file>", "kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)", "KUBECONFIG"))
    .addOption(opt("--log-level <level>", "log level", "LOG_LEVEL").argParser(oneOf(LOG_LEVELS)).default("info"))
    .addOption(opt("--max-body-bytes <n>", "largest request body accepted", "MAX_BODY_BYTES").argParser(integer(1024, 64 * 1024 * 1024)).default(1024 * 1024))
    .addOption(opt("--shutdown-grace-seconds <n>", "how long in-flight work may take at shutdown", "SHUTDOWN_GRACE_SECONDS").argParser(integer(0, 600)).default(10))
    .addOption(opt("--cluster-id <id>", "tag value that marks this cluster's VMs", "CLUSTER_ID").default("peerpods"))
    .addOption(opt("--state-dir <dir>", "folder for state that outlives a restart (local VMs, simulated cloud)", "STATE_DIR").default(".cache/state"))
    .addOption(opt("--worker-concurrency <n>", "pods the worker handles at once", "WORKER_CONCURRENCY").argParser(integer(1, 1000)).default(8))
    .addOption(opt("--gc-interval <seconds>", "how often the worker looks for VMs no live pod owns", "GC_INTERVAL").argParser(integer(1, 86_400)).default(60))
    .addOption(opt("--gc-grace <seconds>", "age a VM must reach before garbage collection may delete it", "GC_GRACE").argParser(integer(0, 86_400)).default(120))
    .addOption(opt("--provider-qps <n>", "cloud API calls per second the worker may make", "PROVIDER_QPS").argParser(integer(1, 100_000)).default(50))
    .addOption(opt("--provider-burst <n>", "cloud API calls the worker may make at once above --provider-qps", "PROVIDER_BURST").argParser(integer(1, 100_000)).default(100))
    .addOption(opt("--no-leader-elect", "run the worker without a Lease (one replica only)", "NO_LEADER_ELECT"))
    .addOption(opt("--leader-election-namespace <ns>", "namespace of the worker's Lease", "LEADER_ELECTION_NAMESPACE").default("peerpods-system"))
    .addOption(opt("--advertise <mode>", "how VM slots reach the nodes: node-status (patch every matching node) or device-plugin (this node's kubelet)", "ADVERTISE").argParser(oneOf(ADVERTISE_MODES)).default("node-status"))
    .addOption(opt("--device-plugin-dir <dir>", "the kubelet's device-plugin folder (device-plugin mode)", "DEVICE_PLUGIN_DIR").default("/var/lib/kubelet/device-plugins"))
    .addOption(opt("--node-name <name>", "the node this process serves (device-plugin mode; usually from the downward API)", "NODE_NAME"))
    .addOption(opt("--hypervisor-socket <path>", "unix socket of the Kata remote hypervisor service (hypervisor part)", "HYPERVISOR_SOCKET").default("/run/peerpod/hypervisor.sock"))
    .addOption(opt("--agent-tls-dir <dir>", "folder of the agent channel's ca.crt, ca.key, tls.crt, tls.key (peerpods agent-certs): mutual TLS to pod VMs' agents (worker, hypervisor); unset: plain TCP, with a warning", "AGENT_TLS_DIR"))
    .addOption(opt("--pods-dir <dir>", `folder of the per-sandbox agent sockets (hypervisor part; at most ${MAX_PODS_DIR_BYTES} bytes, so each socket path fits)`, "PODS_DIR").argParser(podsDir).default("/run/peerpod/pods"))
    .addOption(opt("--podnet-binary <path>", "peerpods-podnet, which tunnels each pod's network namespace on the node to its VM (hypervisor part; a name is looked up on PATH)", "PODNET_BINARY").default("peerpods-podnet"));
}
