import { CoreV1Api, type V1Node } from "@kubernetes/client-node";
import { runWhileLeading } from "../kube/leader-part.js";
import type { SharedInformer } from "../kube/shared-informer.js";
import type { Logger } from "../log/logger.js";
import type { PartContext, RunningPart } from "../parts.js";
import { TokenBucket } from "../providers/ratelimit.js";
import { WorkQueue } from "../kube/work-queue.js";
import { DevicePlugin, deviceList, type Device } from "./device-plugin.js";
import { nodeStatusSync } from "./node-status.js";
import { matchesSelector, slotsOf } from "../policy/nodes.js";

export const LEASE_NAME = "peerpods-advertiser";

/** Node status patches per second (and burst) across all nodes, so a policy change cannot flood the apiserver. */
const PATCH_RATE = { perSecond: 50, burst: 100 };

/**
 * Advertises the VM-slot resource: by patching the status of every matching node (`node-status`),
 * or as a device plugin of this node's kubelet (`device-plugin`). Either way the slots follow the
 * policy, the node annotation and the provider's health.
 */
export async function startAdvertiser(context: PartContext): Promise<RunningPart> {
  const { config, policy } = context;
  const log = context.log.child({ part: "advertiser" });
  if (config.advertise === "device-plugin" && !config.nodeName) throw new Error("--advertise=device-plugin needs --node-name (or PEERPODS_NODE_NAME)");
  const kc = context.kube();
  const core = kc.makeApiClient(CoreV1Api);
  let onChange: (name?: string) => void = () => undefined;
  const nodes = context.nodes();
  const changed = (node: V1Node): void => onChange(node.metadata?.name);
  const unsubscribe = nodes.subscribe({ add: changed, update: changed, delete: changed });
  let synced = false;
  void nodes.synced.then(() => (synced = true));
  context.addReadyCheck("advertiser", () => synced);
  const drive = (mode: Mode): RunningPart => {
    const stopDriving = driveMode(mode, context, (handler) => (onChange = handler));
    return {
      stop: async (graceMs) => {
        stopDriving();
        await mode.stop(graceMs);
      },
    };
  };

  // Node status is cluster-wide: one replica writes it, or replicas whose health readings differ for
  // a moment would flip each other's allocatable back and forth. A device plugin serves its own node.
  const advertising =
    config.advertise === "device-plugin"
      ? drive(await devicePluginMode(context, nodes, log))
      : await runWhileLeading(context, LEASE_NAME, log, async () => drive(nodeStatusMode(context, core, nodes, log)));
  log.info({ mode: config.advertise, resource: policy.current.spec.extendedResourceName }, "advertiser started");

  return {
    stop: async (graceMs) => {
      await advertising.stop(graceMs);
      unsubscribe();
    },
  };
}

/**
 * Feeds node, policy and provider-health changes to `mode`, starting with the provider's first health
 * reading so that nothing is advertised from an assumed health. Returns the function that stops it.
 */
function driveMode(mode: Mode, context: PartContext, setNodeHandler: (handler: (name?: string) => void) => void): () => void {
  const { policy } = context;
  const health = context.providerHealth();
  let live = false;
  const everything = (): void => {
    if (live) mode.changed();
  };
  policy.on("change", everything);
  health.on("change", everything);
  let stopped = false;
  void health.firstReading.then(() => {
    if (stopped) return;
    live = true;
    setNodeHandler(mode.changed);
    everything();
  });
  return () => {
    stopped = true;
    live = false;
    setNodeHandler(() => undefined);
    policy.off("change", everything);
    health.off("change", everything);
  };
}

interface Mode {
  /** A node changed, or with no name: the policy or the provider's health did. */
  changed(name?: string): void;
  stop(graceMs: number): Promise<void>;
}

function nodeStatusMode(context: PartContext, core: CoreV1Api, nodes: SharedInformer<V1Node>, log: Logger): Mode {
  const health = context.providerHealth();
  const { sync, close } = nodeStatusSync({
    api: core,
    node: (name) => nodes.get(name),
    policy: context.policy,
    providerHealthy: () => health.healthy,
    bucket: new TokenBucket(PATCH_RATE.perSecond, PATCH_RATE.burst),
    log,
  });
  const queue = new WorkQueue(sync, {
    concurrency: 4,
    baseBackoffMs: 250,
    maxBackoffMs: 30_000,
    jitter: 0.2,
    onError: (node, error, failures, retryInMs) => log.warn({ err: error, node, failures, retryInMs }, "node status patch failed; retrying"),
  });
  queue.start();
  return {
    changed: (name) => {
      if (name) queue.add(name);
      else for (const node of nodes.list()) if (node.metadata?.name) queue.add(node.metadata.name);
    },
    stop: async (graceMs) => {
      await queue.stop(graceMs);
      close();
    },
  };
}

async function devicePluginMode(context: PartContext, nodes: SharedInformer<V1Node>, log: Logger): Promise<Mode> {
  const { config, policy } = context;
  const nodeName = config.nodeName!;
  const health = context.providerHealth();
  const devices = (): Device[] => {
    const node = nodes.get(nodeName);
    const slots = node && matchesSelector(node.metadata?.labels, policy.current) ? slotsOf(node.metadata?.annotations, policy.current).slots : 0;
    return deviceList(slots, health.healthy);
  };
  const plugin = new DevicePlugin({ dir: config.devicePluginDir, resourceName: () => policy.current.spec.extendedResourceName, devices, log });
  await plugin.start();
  let sent = "";
  return {
    changed: (name) => {
      if (name !== undefined && name !== nodeName) return;
      if (name === undefined) void plugin.check();
      const now = JSON.stringify(devices());
      if (now === sent) return;
      sent = now;
      plugin.update();
    },
    stop: () => plugin.stop(),
  };
}
