/**
 * `npm run cluster:up`: starts a local cluster for a developer in a background process, with this
 * host's real node (kubelet, containerd; as root), and prints how to use it; `npm run cluster:down`
 * stops it and sweeps what the node changed on the host. The running cluster is recorded in the cache dir.
 */
import { spawn } from "node:child_process";
import { openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startCluster } from "./cluster.js";
import { startRealNode, type RealNode } from "./node/node.js";
import { containerdBinary } from "./node/paths.js";
import { readDevCluster, type DevCluster } from "./dev-cluster.js";
import { cacheDir, devClusterFile } from "./paths.js";
import { atExit, onFirstSignal } from "./process.js";

const DAEMON_FLAG = "--daemon";

function printUsage(cluster: DevCluster): void {
  console.log(`cluster running (pid ${cluster.pid}) at ${cluster.server}
kubeconfig: ${cluster.kubeconfigPath}
component logs: ${cluster.logsDir}
${cluster.node ? realNodeUsage(cluster.node) : "real node: none (it needs root)"}

export KUBECONFIG=${cluster.kubeconfigPath}

stop it with: npm run cluster:down`);
}

function realNodeUsage(node: NonNullable<DevCluster["node"]>): string {
  return `real node: ${node.name} (kubelet, containerd, runc; images busybox and pause only, so pods use imagePullPolicy IfNotPresent or Never)
  its logs: ${node.logsDir}
  its containers: ${containerdBinary("ctr")} --address ${node.containerdSocket} -n k8s.io containers list`;
}

/** The background process: owns the cluster until SIGTERM (cluster:down), then stops the node and the cluster. */
async function daemon(): Promise<void> {
  const cluster = await startCluster();
  let node: RealNode | undefined;
  onFirstSignal(() => void (async () => {
    await node?.stop();
    await cluster.stop();
    process.exit(0);
  })());
  // the kubelet needs root; without it a developer still gets the control plane and KWOK
  if (process.getuid?.() === 0) node = await startRealNode(cluster);
  const record: DevCluster = {
    pid: process.pid,
    kubeconfigPath: cluster.kubeconfigPath,
    server: cluster.server,
    logsDir: cluster.logsDir,
    node: node && { name: node.name, logsDir: node.logsDir, containerdSocket: node.containerdSocket },
  };
  writeFileSync(devClusterFile(), JSON.stringify(record, null, 2));
  atExit(() => rmSync(devClusterFile(), { force: true }));
  process.send?.(record);
  process.disconnect?.();
}

async function launch(): Promise<void> {
  const existing = readDevCluster();
  if (existing) {
    printUsage(existing);
    return;
  }
  await mkdir(cacheDir(), { recursive: true });
  const logFile = join(cacheDir(), "dev-cluster.log");
  const output = openSync(logFile, "w");
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), DAEMON_FLAG], {
    detached: true,
    stdio: ["ignore", output, output, "ipc"],
  });
  console.error("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and the real node ...");
  const started = Date.now();
  const record = await new Promise<DevCluster>((resolve, reject) => {
    child.once("message", (message) => resolve(message as DevCluster));
    child.once("exit", (code) => reject(new Error(`the cluster did not start (exit ${code}); see ${logFile}:\n${readFileSync(logFile, "utf8").slice(-4000)}`)));
  });
  child.unref();
  child.disconnect();
  console.error(`started in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  printUsage(record);
}

try {
  await (process.argv.includes(DAEMON_FLAG) ? daemon() : launch());
} catch (error) {
  console.error(`cluster:up: ${(error as Error).message}`);
  process.exit(1);
}
