import type { KubeConfig, V1Node, V1Pod } from "@kubernetes/client-node";
import type { AgentTls } from "./agent-tls/store.js";
import type { ServeConfig } from "./config/serve.js";
import type { EventRecorder } from "./kube/events.js";
import type { SharedInformer } from "./kube/shared-informer.js";
import type { Logger } from "./log/logger.js";
import type { PolicyStore } from "./policy/store.js";
import type { ProviderHealthMonitor } from "./providers/health.js";
import type { Provider } from "./providers/types.js";

/** What every part gets from `peerpods serve`. */
export interface PartContext {
  config: ServeConfig;
  policy: PolicyStore;
  log: Logger;
  /** The cluster connection; throws a clear error when none is configured. */
  kube(): KubeConfig;
  events(): EventRecorder;
  /** The process's one cache of every pod, started on first use; parts subscribe and unsubscribe when they stop. */
  pods(): SharedInformer<V1Pod>;
  /** The same for nodes. */
  nodes(): SharedInformer<V1Node>;
  /**
   * The cloud named by the policy, shared by every part: made on first use, replaced when the
   * policy's settings for it change (each call goes to the one in force), made again after a failure.
   */
  provider(): Promise<Provider>;
  /** Shared health of that provider, polled while any part uses it. */
  providerHealth(): ProviderHealthMonitor;
  /** Mutual TLS to pod VMs' agents; undefined when the agent channel is plain TCP. */
  agentTls: AgentTls | undefined;
  /** Registers a readiness check; `/readyz` is ok when all of them are. */
  addReadyCheck(name: string, check: () => boolean): void;
}

export interface RunningPart {
  /** Stops accepting work and finishes what is in flight within the grace period. */
  stop(graceMs: number): Promise<void>;
}

export type PartStarter = (context: PartContext) => Promise<RunningPart>;
