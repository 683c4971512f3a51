import { existsSync, readFileSync } from "node:fs";
import { devClusterFile } from "./paths.js";

/** What `npm run cluster:up` records about the cluster it started. */
export interface DevCluster {
  pid: number;
  kubeconfigPath: string;
  server: string;
  logsDir: string;
  /** This host's real node, when cluster:up ran as root. */
  node?: { name: string; logsDir: string; containerdSocket: string };
}

/** The recorded developer cluster, if its process is still alive. */
export function readDevCluster(): DevCluster | undefined {
  if (!existsSync(devClusterFile())) return undefined;
  const record = JSON.parse(readFileSync(devClusterFile(), "utf8")) as DevCluster;
  return isAlive(record.pid) ? record : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
