import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { ANNOTATION } from "../kube/annotations.js";
import { healthApp } from "../http/apps.js";
import { startServer } from "../http/server.js";
import { quotaUsed } from "../metrics/scheduling.js";
import type { PartContext, RunningPart } from "../parts.js";
import { ReleaseNudge } from "./nudge.js";
import { extenderRoutes } from "./route.js";
import { SchedulingState } from "./state.js";

/** The HTTPS scheduler extender: `POST /filter`, `POST /prioritize`, fed by the shared node and pod caches. */
export async function startExtender(context: PartContext): Promise<RunningPart> {
  const { config, policy, log } = context;
  const partLog = log.child({ part: "extender" });
  const kc = context.kube();
  const core = kc.makeApiClient(CoreV1Api);
  const state = new SchedulingState(policy.current);
  const publishUsage = (): void => {
    const used = state.usage();
    quotaUsed.set({ resource: "vms" }, used.vms);
    quotaUsed.set({ resource: "vcpus" }, used.vcpus);
  };
  const onPolicy = (next: typeof policy.current): void => {
    state.setPolicy(next);
    publishUsage();
  };
  policy.on("change", onPolicy);

  const nodes = context.nodes();
  const unsubscribeNodes = nodes.subscribe({
    add: (node) => state.upsertNode(node),
    update: (node) => state.upsertNode(node),
    delete: (node) => state.deleteNode(node),
  });
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const nudge = new ReleaseNudge(async (name, at) => {
    await core.patchNode({ name, body: { metadata: { annotations: { [ANNOTATION.capacityReleased]: at } } } }, mergePatch);
  }, partLog);
  /** Applies a pod event; a VM that stopped counting may let a pod turned away earlier fit now. */
  const onPod = (pod: V1Pod, apply: (pod: V1Pod) => void): void => {
    const before = state.usage().vms;
    apply(pod);
    publishUsage();
    const node = pod.spec?.nodeName;
    if (node && state.usage().vms < before) nudge.released(node);
  };
  const pods = context.pods();
  const unsubscribePods = pods.subscribe({
    add: (pod) => onPod(pod, (p) => state.upsertPod(p)),
    update: (pod) => onPod(pod, (p) => state.upsertPod(p)),
    delete: (pod) => onPod(pod, (p) => state.deletePod(p)),
  });
  let synced = false;
  void Promise.all([nodes.synced, pods.synced]).then(() => {
    synced = true;
    partLog.info({ usage: state.usage() }, "extender caches synced");
  });
  context.addReadyCheck("extender", () => synced);

  const health = context.providerHealth();
  const server = await startServer({
    name: "extender",
    host: config.bindAddress,
    port: config.extenderPort,
    tls: { certFile: config.tlsCert, keyFile: config.tlsKey, clientCaFile: config.extenderClientCa },
    fastRoutes: extenderRoutes({
      state,
      log: partLog,
      maxBodyBytes: config.maxBodyBytes,
      onTurnedAway: () => nudge.turnedAway(),
      providerProblem: () => (health.healthy ? undefined : `the cloud provider is unhealthy (${health.message ?? "health checks failing"}); peer pods wait until it recovers`),
    }),
    app: healthApp(() => synced),
    log: partLog,
  });
  return {
    stop: async (graceMs) => {
      await server.close(graceMs);
      nudge.stop();
      policy.off("change", onPolicy);
      unsubscribeNodes();
      unsubscribePods();
    },
  };
}
