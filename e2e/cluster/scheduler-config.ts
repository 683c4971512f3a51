import { readFile } from "node:fs/promises";
import { parse as parseYaml, stringify } from "yaml";

const API_VERSION = "kubescheduler.config.k8s.io/v1";

export interface SchedulerConnection {
  kubeconfig: string;
  /** Client QPS (burst = 2 × QPS); omitted = the scheduler's default (50). */
  qps?: number;
}

type Document = Record<string, unknown>;

/**
 * A KubeSchedulerConfiguration for the local cluster: the given one (extenders, profiles...) with
 * this cluster's kubeconfig, the client QPS, and leader election off filled in. With a config
 * file the scheduler ignores its --kubeconfig and --leader-elect flags, hence this merge.
 */
export function schedulerConfiguration(base: Document | undefined, connection: SchedulerConnection): Document {
  const config: Document = { ...(base ?? { apiVersion: API_VERSION, kind: "KubeSchedulerConfiguration" }) };
  if (config.kind !== "KubeSchedulerConfiguration") throw new Error(`expected a KubeSchedulerConfiguration, got kind ${String(config.kind)}`);
  const clientConnection: Document = { ...(config.clientConnection as Document | undefined), kubeconfig: connection.kubeconfig };
  if (connection.qps !== undefined) {
    clientConnection.qps = connection.qps;
    clientConnection.burst = connection.qps * 2;
  }
  config.clientConnection = clientConnection;
  config.leaderElection = { ...(config.leaderElection as Document | undefined), leaderElect: false };
  return config;
}

export async function schedulerConfigurationFile(path: string | undefined, connection: SchedulerConnection): Promise<string> {
  const base = path === undefined ? undefined : (parseYaml(await readFile(path, "utf8")) as Document);
  return stringify(schedulerConfiguration(base, connection));
}
