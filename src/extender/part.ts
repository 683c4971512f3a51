import { CoreV1Api, type V1Node, type V1Pod } from "@kubernetes/client-node";
import { healthApp } from "../http/apps.js";
import { startServer } from "../http/server.js";
import { startInformer } from "../kube/informer.js";
import { quotaUsed } from "../metrics/scheduling.js";
import type { PartContext, RunningPart } from "../parts.js";
import { extenderRoutes } from "./route.js";
import { SchedulingState } from "./state.js";

/** The HTTPS scheduler extender: `POST /filter`, `POST /prioritize`, fed by node and pod informers. */
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

  const nodes = startInformer<V1Node>(kc, "/api/v1/nodes", () => core.listNode(), partLog, (informer) => {
    informer.on("add", (node) => state.upsertNode(node));
    informer.on("update", (node) => state.upsertNode(node));
    informer.on("delete", (node) => state.deleteNode(node));
  });
  const pods = startInformer<V1Pod>(kc, "/api/v1/pods", () => core.listPodForAllNamespaces(), partLog, (informer) => {
    const upsert = (pod: V1Pod): void => {
      state.upsertPod(pod);
      publishUsage();
    };
    informer.on("add", upsert);
    informer.on("update", upsert);
    informer.on("delete", (pod) => {
      state.deletePod(pod);
      publishUsage();
    });
  });
  let synced = false;
  void Promise.all([nodes.synced, pods.synced]).then(() => {
    synced = true;
    partLog.info({ usage: state.usage() }, "extender caches synced");
  });
  context.addReadyCheck("extender", () => synced);

  const server = await startServer({
    name: "extender",
    host: config.bindAddress,
    port: config.extenderPort,
    tls: { certFile: config.tlsCert, keyFile: config.tlsKey },
    fastRoutes: extenderRoutes({ state, log: partLog, maxBodyBytes: config.maxBodyBytes }),
    app: healthApp(() => synced),
    log: partLog,
  });
  return {
    stop: async (graceMs) => {
      await server.close(graceMs);
      policy.off("change", onPolicy);
      await Promise.all([nodes.stop(), pods.stop()]);
    },
  };
}
