/**
 * One real node next to the KWOK nodes: containerd (CRI, runc, overlayfs, a bridge CNI network)
 * and a kubelet registered as system:node:NAME, all under one folder of the temp dir. Stopping it
 * (or the exit of this process) puts the host back as it was (sweep.ts).
 */
import { CoreV1Api } from "@kubernetes/client-node";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Cluster } from "../cluster.js";
import { writeKubeconfig } from "../kubeconfig.js";
import { atExit, pidsMentioning, tail } from "../process.js";
import { freePorts } from "../../support/ports.js";
import { cniConfList, containerdConfig, kubeletConfig, nodeLayout, type NodeLayout } from "./config.js";
import { hostChanges, readHostState, type HostState } from "./host-state.js";
import { cniDir, kubeletBinary, NODE_IMAGES, nodeArtifacts, nodeImageArchive, runcBinary } from "./paths.js";
import { NodeParts, type ContainerdExtra } from "./parts.js";
import { sweepHost } from "./sweep.js";

/** CRI handlers the node serves, all with runc: `runc` (the default), and the peer-pod RuntimeClasses' handlers. */
export const RUNTIME_HANDLERS = ["runc", "kata-remote", "peerpods"];
const BRIDGE = "peerpods-br0";
const POD_SUBNET = "10.88.0.0/24";

export interface RealNodeOptions {
  /** Labels the kubelet registers its node with (NodeRestriction refuses only kubernetes.io / k8s.io ones it does not own). */
  labels?: Record<string, string>;
  /** Shims beyond runc's (e.g. containerd-shim-peerpods-v2) and the environment containerd hands them. */
  containerd?: ContainerdExtra;
}

export interface RealNode {
  name: string;
  dir: string;
  /** containerd's and the kubelet's logs. */
  logsDir: string;
  containerdSocket: string;
  /** kubelet start → node Ready and untainted, in ms. */
  readyMs: number;
  logFiles(): Record<string, string>;
  /** The last lines of containerd's or the kubelet's log, for a failure message. */
  logTail(part: "containerd" | "kubelet", lines?: number): string;
  /** `ctr` against this node's containerd, in the CRI's namespace (k8s.io). */
  ctr(args: string[]): Promise<string>;
  /** The pods' network interfaces: the host ends of their veths, on the node's bridge. */
  podInterfaces(): string[];
  /** How containerd runs a pod's sandbox: the CRI runtime handler it was asked for, and the runtime (shim) behind it. */
  sandboxRuntime(podUid: string): Promise<{ handler: string; runtime: string }>;
  /** SIGKILLs the kubelet and starts it again; resolves once the node is Ready again. */
  restartKubelet(): Promise<void>;
  /** SIGKILLs containerd (not its shims) and starts it again; resolves once it answers. */
  restartContainerd(): Promise<void>;
  /** What the node (still) leaves on the host compared with before it started; empty once stopped cleanly. */
  leftovers(): string[];
  /** Stops the kubelet and containerd, removes the Node, sweeps the host; returns what the sweep had to clean. Idempotent. */
  stop(): Promise<string[]>;
}

/** The loopback address the node name resolves to, where the kubelet serves and the apiserver reaches it. */
async function loopbackOf(name: string): Promise<string> {
  const { address } = await lookup(name, { family: 4 }).catch(() => ({ address: "" }));
  if (!isIP(address) || !address.startsWith("127.")) {
    throw new Error(`the real node is named after this host, "${name}", which must resolve to a loopback address (it resolves to "${address || "nothing"}"): add "127.0.0.1 ${name}" to /etc/hosts`);
  }
  return address;
}

async function writeConfigs(layout: NodeLayout, cluster: Cluster, address: string, runtimeTypes: Record<string, string>): Promise<void> {
  for (const folder of [dirname(layout.containerdConfig), layout.cniConfDir, layout.ipamDir, layout.podLogsDir, layout.logsDir]) await mkdir(folder, { recursive: true });
  const [port, healthzPort] = (await freePorts(2)) as [number, number];
  const { name, token } = cluster.nodeCredentials;
  await writeFile(
    layout.containerdConfig,
    containerdConfig({ layout, runcBinary: runcBinary(), cniBinDir: cniDir(), sandboxImage: NODE_IMAGES.pause.name, handlers: RUNTIME_HANDLERS, runtimeTypes }),
  );
  await writeFile(join(layout.cniConfDir, "10-peerpods.conflist"), cniConfList({ layout, bridge: BRIDGE, subnet: POD_SUBNET }));
  await writeFile(layout.kubeletConfig, kubeletConfig({ layout, address, port, healthzPort }));
  await writeKubeconfig(layout.kubeconfig, { server: cluster.server, caFile: cluster.caFile, token, user: `system:node:${name}` });
}

/** Starts the real node of this host in `cluster`; resolves once it is Ready and untainted. */
export async function startRealNode(cluster: Cluster, options: RealNodeOptions = {}): Promise<RealNode> {
  const missing = nodeArtifacts().filter((file) => !existsSync(file));
  if (missing.length) throw new Error(`not built: ${missing.join(", ")}; run \`npm run cluster:build\``);
  const { name } = cluster.nodeCredentials;
  const running = pidsMentioning(kubeletBinary());
  if (running.length) throw new Error(`a real node already runs on this host (kubelet pid ${running.join(", ")}): one per host, its device-plugin folder is fixed`);
  const address = await loopbackOf(name);
  const layout = nodeLayout(await mkdtemp(join(tmpdir(), "peerpods-node-")));
  const before = readHostState([layout.dir]);
  const forgetSweep = atExit(() => sweepHost(before, layout.dir));
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const parts = new NodeParts(layout, name, options.labels ?? {}, core, options.containerd);
  let stopping: Promise<string[]> | undefined;
  const stop = (): Promise<string[]> =>
    (stopping ??= (async () => {
      await parts.stop();
      const swept = sweepHost(before, layout.dir);
      forgetSweep();
      await core.deleteNode({ name }).catch(() => undefined);
      return swept;
    })());

  try {
    await writeConfigs(layout, cluster, address, options.containerd?.runtimeTypes ?? {});
    await parts.startContainerd();
    for (const image of ["pause", "busybox"] as const) await parts.ctr(["images", "import", "--platform", "linux/amd64", nodeImageArchive(image)]);
    const readyMs = await parts.startKubelet();
    return {
      name,
      dir: layout.dir,
      logsDir: layout.logsDir,
      containerdSocket: layout.containerdSocket,
      readyMs,
      logFiles: () => parts.logFiles(),
      logTail: (part, lines = 20) => tail(join(layout.logsDir, `${part}.log`), lines),
      ctr: parts.ctr,
      podInterfaces: () => (existsSync(`/sys/class/net/${BRIDGE}/brif`) ? readdirSync(`/sys/class/net/${BRIDGE}/brif`) : []),
      sandboxRuntime: (podUid) => sandboxRuntime(parts.ctr, podUid),
      async restartKubelet() {
        await parts.kill("kubelet");
        await parts.startKubelet();
      },
      async restartContainerd() {
        await parts.kill("containerd");
        await parts.startContainerd();
      },
      leftovers: () => leftovers(before, layout.dir),
      stop,
    };
  } catch (error) {
    const logs = parts.tails(20);
    await stop();
    throw new Error(`the real node did not start: ${(error as Error).message}\n${logs}`, { cause: error });
  }
}

async function sandboxRuntime(ctr: (args: string[]) => Promise<string>, podUid: string): Promise<{ handler: string; runtime: string }> {
  const filter = `labels."io.kubernetes.pod.uid"==${podUid},labels."io.cri-containerd.kind"==sandbox`;
  const [id] = (await ctr(["containers", "list", "--quiet", filter])).split("\n").filter(Boolean);
  if (!id) throw new Error(`containerd has no sandbox of pod ${podUid}`);
  return sandboxRuntimeOf(JSON.parse(await ctr(["containers", "info", id])) as ContainerInfo);
}

interface ContainerInfo {
  Runtime: { Name: string };
  Extensions?: Record<string, { value: string }>;
}

/** The CRI plugin keeps a sandbox's metadata (with its runtime handler) as JSON in a container extension. */
function sandboxRuntimeOf(info: ContainerInfo): { handler: string; runtime: string } {
  const metadata = info.Extensions?.["io.cri-containerd.sandbox.metadata"]?.value;
  const handler = metadata ? (JSON.parse(Buffer.from(metadata, "base64").toString()) as { Metadata?: { RuntimeHandler?: string } }).Metadata?.RuntimeHandler : undefined;
  return { handler: handler ?? "", runtime: info.Runtime.Name };
}

function leftovers(before: HostState, dir: string): string[] {
  const processes = pidsMentioning(dir).map((pid) => `process left behind: ${pid}`);
  return [...hostChanges(before, readHostState([dir])), ...processes, ...(existsSync(dir) ? [`folder left behind: ${dir}`] : [])];
}
