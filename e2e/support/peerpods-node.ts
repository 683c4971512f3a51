import { CoreV1Api, NodeV1Api, type KubeConfig, type V1Node, type V1Pod } from "@kubernetes/client-node";
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { buildRuntime } from "../../src/runtime/build.js";
import type { Cluster } from "../cluster/cluster.js";
import type { RealNode, RealNodeOptions } from "../cluster/node/node.js";
import { atExit, pidsMentioning } from "../cluster/process.js";
import { localAgentCa } from "./certs.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR, withWebhookUrl } from "./manifests.js";
import { startPeerpods, type Peerpods } from "./peerpods.js";
import { serviceAccountKubeconfig } from "./tokens.js";
import { waitFor } from "./wait.js";

/** The RuntimeClass (and CRI handler) whose pods run in their VM. */
export const PEERPODS_RUNTIME_CLASS = "peerpods";
export const PEERPODS_RUNTIME_TYPE = "io.containerd.peerpods.v2";
/** The label kata-deploy puts on Kata nodes; the local overlay's policy gives VM slots to nodes with it. */
export const PEER_LABEL_KEY = "katacontainers.io/kata-runtime";
export const PEER_LABEL = { [PEER_LABEL_KEY]: "true" };
export const VM_RESOURCE = "kata.peerpods.io/vm";

/**
 * The real node's containerd options that run handler `peerpods` with containerd-shim-peerpods-v2
 * (built, or reused, first), which asks the hypervisor part on `hypervisorSocket` for the pod's VM.
 */
export async function peerpodsContainerd(hypervisorSocket: string): Promise<NonNullable<RealNodeOptions["containerd"]>> {
  const { shim } = await buildRuntime();
  return { shimDirs: [dirname(shim)], env: { PEERPODS_HYPERVISOR_SOCKET: hypervisorSocket }, runtimeTypes: { [PEERPODS_RUNTIME_CLASS]: PEERPODS_RUNTIME_TYPE } };
}

/** The RuntimeClass `peerpods` (handler `peerpods`), if the cluster does not have it yet. */
export async function ensurePeerpodsRuntimeClass(kc: KubeConfig): Promise<void> {
  const body = { metadata: { name: PEERPODS_RUNTIME_CLASS }, handler: PEERPODS_RUNTIME_CLASS };
  await kc.makeApiClient(NodeV1Api).createRuntimeClass({ body }).catch((error: unknown) => {
    if ((error as { code?: number }).code !== 409) throw error;
  });
}

/**
 * The hypervisor part alone for the real node's shim (`peerpodsContainerd(<dir>/hypervisor.sock)`),
 * mutual TLS to its VMs: the policy from `<dir>/policy.json`, the sandboxes in `<dir>/pods`, the VMs'
 * state in `<dir>/state`, so a part started again on the same folder finds them.
 */
export async function startNodeHypervisor(kubeconfig: string, dir: string, clusterId: string): Promise<Peerpods> {
  return startPeerpods({
    args: [
      "--parts=hypervisor",
      `--policy-file=${join(dir, "policy.json")}`,
      `--hypervisor-socket=${join(dir, "hypervisor.sock")}`,
      `--pods-dir=${join(dir, "pods")}`,
      `--state-dir=${join(dir, "state")}`,
      `--cluster-id=${clusterId}`,
      `--agent-tls-dir=${await localAgentCa()}`,
    ],
    kubeconfig,
  });
}

export interface NodePeerpods {
  peerpods: Peerpods;
  /** The hypervisor part's sandbox folders: short, for the 64-character sandbox ids' agent sockets. */
  podsDir: string;
  /** Each node's advertised VM slots, e.g. "node-1 2, kwok-1 none". */
  slots: string;
}

/** SIGKILLs the processes whose command line mentions `text` (a run's own folder); returns how many. */
export function killMentioning(text: string): number {
  const pids = pidsMentioning(text);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  return pids.length;
}

/**
 * Applies the local overlay and runs peerpods on this host for the real node, as its
 * ServiceAccount: `parts` (the advertiser as the node's device plugin, the hypervisor part on
 * `hypervisorSocket` for the node's shim), with the webhook configuration pointed at it. Resolves
 * once every node advertises the policy's VM slots (labelled nodes) or none (the others).
 */
export async function servePeerpodsForNode(cluster: Cluster, node: RealNode, options: { workDir: string; hypervisorSocket: string; parts: string[] }): Promise<NodePeerpods> {
  const kc = cluster.kc;
  const manifests = await loadManifests(LOCAL_OVERLAY_DIR);
  const isWebhook = (kind?: string): boolean => kind === "MutatingWebhookConfiguration";
  await applyObjects(kc, manifests.filter((o) => !isWebhook(o.kind)));
  const kubeconfig = await serviceAccountKubeconfig(kc, { namespace: "peerpods-system", name: "peerpods" }, join(options.workDir, "peerpods.kubeconfig"), cluster.caFile);
  const podsDir = await mkdtemp(join(tmpdir(), "pp-"));
  atExit(() => rmSync(podsDir, { recursive: true, force: true }));
  const peerpods = await startPeerpods({
    kubeconfig,
    args: [
      `--parts=${options.parts.join(",")}`,
      `--agent-tls-dir=${await localAgentCa()}`,
      "--advertise=device-plugin",
      `--node-name=${node.name}`,
      `--hypervisor-socket=${options.hypervisorSocket}`,
      `--pods-dir=${podsDir}`,
      "--log-level=info",
    ],
  });
  atExit(() => killMentioning(peerpods.stateDir));
  await applyObjects(kc, withWebhookUrl(manifests.filter((o) => isWebhook(o.kind)), peerpods.webhookUrl, peerpods.caBundle));
  const policy = manifests.find((o) => o.kind === "PeerPodPolicy") as { spec: { nodes: { vmsPerNode: number } } };
  const wanted = (n: V1Node): string | undefined => (n.metadata?.labels?.[PEER_LABEL_KEY] ? String(policy.spec.nodes.vmsPerNode) : undefined);
  const core = kc.makeApiClient(CoreV1Api);
  const slots = await waitFor(
    async () => {
      const { items } = await core.listNode();
      if (!items.every((n) => n.status?.allocatable?.[VM_RESOURCE] === wanted(n))) return undefined;
      return items.map((n) => `${n.metadata?.name} ${wanted(n) ?? "none"}`).join(", ");
    },
    { timeoutMs: 30_000, message: "the real kubelet to advertise the policy's VM slots from peerpods' device plugin, and the other nodes none" },
  );
  return { peerpods, podsDir, slots };
}

/** Waits until the apiserver calls the webhook: a dry run of `pod` comes back with one VM unit requested. */
export async function untilWebhookAdmits(kc: KubeConfig, pod: V1Pod): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = pod.metadata!.namespace!;
  await waitFor(async () => (await core.createNamespacedPod({ namespace, body: pod, dryRun: "All" })).spec?.containers[0]?.resources?.requests?.[VM_RESOURCE] === "1", {
    timeoutMs: 20_000,
    message: "the apiserver to call the webhook",
  });
}
