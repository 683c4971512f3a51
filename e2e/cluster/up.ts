/**
 * `npm run cluster:up`: starts a local cluster for a developer in a background process and prints
 * how to use it; `npm run cluster:down` stops it. The running cluster is recorded in the cache dir.
 */
import { spawn } from "node:child_process";
import { openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startCluster } from "./cluster.js";
import { readDevCluster, type DevCluster } from "./dev-cluster.js";
import { cacheDir, devClusterFile } from "./paths.js";
import { atExit } from "./process.js";

const DAEMON_FLAG = "--daemon";

function printUsage(cluster: DevCluster): void {
  console.log(`cluster running (pid ${cluster.pid}) at ${cluster.server}
kubeconfig: ${cluster.kubeconfigPath}
component logs: ${cluster.logsDir}

export KUBECONFIG=${cluster.kubeconfigPath}

stop it with: npm run cluster:down`);
}

/** The background process: owns the cluster until SIGTERM (cluster:down). */
async function daemon(): Promise<void> {
  const cluster = await startCluster();
  const record: DevCluster = { pid: process.pid, kubeconfigPath: cluster.kubeconfigPath, server: cluster.server, logsDir: cluster.logsDir };
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
  console.error("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok ...");
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
