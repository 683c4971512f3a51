import type { KubeConfig } from "@kubernetes/client-node";
import { unwatchFile, watchFile } from "node:fs";
import type { ServeConfig, PartName } from "./config/serve.js";
import { metricsApp } from "./http/apps.js";
import { startServer } from "./http/server.js";
import { clusterCaches } from "./kube/caches.js";
import { loadKubeConfig } from "./kube/client.js";
import { eventRecorder, type EventRecorder } from "./kube/events.js";
import type { Logger } from "./log/logger.js";
import { registry } from "./metrics/registry.js";
import { loadPolicyFile, readPolicyDocument } from "./policy/file.js";
import { describeErrors } from "./policy/issues.js";
import { policyErrors } from "./metrics/admission.js";
import { defaultPolicy } from "./policy/schema.js";
import { PolicyStore } from "./policy/store.js";
import { watchClusterPolicy } from "./policy/watch.js";
import type { PartContext, PartStarter, RunningPart } from "./parts.js";
import { createProvider } from "./providers/factory.js";
import { ProviderHealthMonitor } from "./providers/health.js";
import { CurrentProvider } from "./providers/current.js";
import { withAgentCertificates } from "./providers/agent-certificates.js";
import { agentChannel } from "./agent-tls/channel.js";
import { startWebhook } from "./webhook/part.js";
import { startExtender } from "./extender/part.js";
import { startAdvertiser } from "./advertiser/part.js";
import { startHypervisor } from "./hypervisor/part.js";
import { startWorker } from "./worker/part.js";

const STARTERS: Partial<Record<PartName, PartStarter>> = {
  webhook: startWebhook,
  extender: startExtender,
  advertiser: startAdvertiser,
  hypervisor: startHypervisor,
  worker: startWorker,
};

/** The parts that create VMs or reach their agents. */
const AGENT_CLIENTS = new Set<PartName>(["worker", "hypervisor"]);

export interface Serving {
  /** Graceful stop: parts first (in reverse start order), then the metrics server. */
  stop(): Promise<void>;
}

/** Starts the parts named in the config; resolves once all of them listen. */
export async function serve(config: ServeConfig, log: Logger): Promise<Serving> {
  const missing = config.parts.filter((part) => !STARTERS[part]);
  if (missing.length) throw new Error(`--parts: ${missing.join(", ")} not available in this build`);

  const policy = await initialPolicy(config, log);
  let kube: KubeConfig | undefined;
  let events: EventRecorder | undefined;
  const readyChecks = new Map<string, () => boolean>();
  const agentTls = config.parts.some((part) => AGENT_CLIENTS.has(part)) ? await agentChannel(config.agentTlsDir, log) : undefined;
  const provider = new CurrentProvider({
    config: () => policy.current.spec.provider,
    create: async (block) => {
      const made = await createProvider(block, { clusterId: config.clusterId, stateDir: config.stateDir, log, ...(agentTls ? { agentTls } : {}) });
      return agentTls ? withAgentCertificates(made, agentTls) : made;
    },
    log: log.child({ part: "provider" }),
  });
  let health: ProviderHealthMonitor | undefined;
  const caches = clusterCaches(() => context.kube(), log.child({ part: "caches" }));
  const context: PartContext = {
    config,
    policy,
    log,
    kube: () => (kube ??= loadKubeConfig(config.kubeconfig)),
    events: () => (events ??= eventRecorder(context.kube(), log)),
    pods: () => caches.pods(),
    nodes: () => caches.nodes(),
    agentTls,
    addReadyCheck: (name, check) => readyChecks.set(name, check),
    provider: () => provider.ready(),
    providerHealth: () => {
      if (!health) {
        health = new ProviderHealthMonitor(context.provider, log.child({ part: "provider-health" }));
        health.start();
      }
      return health;
    },
  };
  const cleanups: (() => Promise<void>)[] = [];

  if (config.policyFile) cleanups.push(reloadOnChange(config.policyFile, policy, log));
  else {
    const watch = watchClusterPolicy(context.kube(), policy, context.events(), log.child({ part: "policy" }));
    let synced = false;
    void watch.synced.then(() => (synced = true));
    context.addReadyCheck("policy", () => synced);
    cleanups.push(() => watch.stop());
  }

  const metrics = await startServer({
    name: "metrics",
    host: config.bindAddress,
    port: config.metricsPort,
    app: metricsApp(registry, () => [...readyChecks.values()].every((check) => check())),
    log,
  });
  const running: RunningPart[] = [];
  try {
    for (const part of config.parts) running.push(await STARTERS[part]!(context));
  } catch (error) {
    await Promise.allSettled(running.map((p) => p.stop(0)));
    await caches.stop();
    await metrics.close(0);
    throw error;
  }
  log.info({ parts: config.parts, policyGeneration: policy.current.generation }, "peerpods serving");

  return {
    stop: async () => {
      const graceMs = config.shutdownGraceSeconds * 1000;
      for (const part of running.reverse()) await part.stop(graceMs);
      await caches.stop();
      await Promise.allSettled(cleanups.map((cleanup) => cleanup()));
      health?.stop();
      await provider.close();
      await metrics.close(graceMs);
    },
  };
}

async function initialPolicy(config: ServeConfig, log: Logger): Promise<PolicyStore> {
  const policyLog = log.child({ part: "policy" });
  if (!config.policyFile) return new PolicyStore(defaultPolicy(), policyLog);
  const result = await loadPolicyFile(config.policyFile);
  if (!result.ok) {
    throw new Error(`--policy-file ${config.policyFile} is invalid: ${describeErrors(result.errors)}`);
  }
  log.info({ file: config.policyFile }, "policy loaded from file");
  return new PolicyStore(result.spec, policyLog);
}

/** A policy file edited in place applies without a restart; an invalid edit is rejected and logged. */
function reloadOnChange(path: string, store: PolicyStore, log: Logger): () => Promise<void> {
  watchFile(path, { interval: 1000 }, (now, before) => {
    if (now.mtimeMs === before.mtimeMs) return;
    readPolicyDocument(path).then(
      (document) => {
        const result = store.update({ document, source: path });
        if (result.ok) log.info({ file: path, generation: result.policy.generation }, "policy file reloaded");
      },
      (error: unknown) => {
        policyErrors.inc();
        log.error({ err: error, file: path }, "policy file could not be read; the last good policy stays in force");
      },
    );
  });
  return async () => unwatchFile(path);
}
