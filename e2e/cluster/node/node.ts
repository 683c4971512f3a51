/**
 * One real node next to the KWOK nodes: containerd (CRI, runc, overlayfs, a bridge CNI network)
 * and a kubelet registered as system:node:NAME, all under one folder of the temp dir. Stopping it
 * (or the exit of this process) puts the host back as it was (sweep.ts).
 */
import { CoreV1Api } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { Cluster } from "../cluster.js";
import { untilExit, waitSchedulable } from "../cluster.js";
import { writeKubeconfig } from "../kubeconfig.js";
import { atExit, pidsMentioning, startProcess, tail, type ManagedProcess } from "../process.js";
import { freePorts } from "../../support/ports.js";
import { waitFor } from "../../support/wait.js";
import { cniConfList, containerdConfig, kubeletConfig, nodeLayout, type NodeLayout } from "./config.js";
import { hostChanges, readHostState, type HostState } from "./host-state.js";
import { cniDir, containerdBinary, kubeletBinary, NODE_IMAGES, nodeArtifacts, nodeImageArchive, runcBinary } from "./paths.js";
import { sweepHost } from "./sweep.js";

const exec = promisify(execFile);

/** CRI handlers the node serves, all with runc: `runc` (the default), and the peer-pod RuntimeClasses' handlers. */
export const RUNTIME_HANDLERS = ["runc", "kata-remote", "peerpods"];
const BRIDGE = "peerpods-br0";
const POD_SUBNET = "10.88.0.0/24";
const READY_TIMEOUT_MS = 60_000;

export interface RealNodeOptions {
  /** Labels the kubelet registers its node with (NodeRestriction refuses only kubernetes.io / k8s.io ones it does not own). */
  labels?: Record<string, string>;
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

/** The host's first non-loopback IPv4 address: the kubelet refuses a loopback --node-ip. */
function hostAddress(): string {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
  if (!address) throw new Error("the real node needs a non-loopback IPv4 address on this host for the kubelet's --node-ip");
  return address;
}

/** The loopback address the node name resolves to, where the kubelet serves and the apiserver reaches it. */
async function loopbackOf(name: string): Promise<string> {
  const { address } = await lookup(name, { family: 4 }).catch(() => ({ address: "" }));
  if (!isIP(address) || !address.startsWith("127.")) {
    throw new Error(`the real node is named after this host, "${name}", which must resolve to a loopback address (it resolves to "${address || "nothing"}"): add "127.0.0.1 ${name}" to /etc/hosts`);
  }
  return address;
}

async function writeConfigs(layout: NodeLayout, cluster: Cluster, address: string): Promise<void> {
  for (const folder of [dirname(layout.containerdConfig), layout.cniConfDir, layout.ipamDir, layout.podLogsDir, layout.logsDir]) await mkdir(folder, { recursive: true });
  const [port, healthzPort] = (await freePorts(2)) as [number, number];
  const { name, token } = cluster.nodeCredentials;
  await writeFile(
    layout.containerdConfig,
    containerdConfig({ layout, runcBinary: runcBinary(), cniBinDir: cniDir(), sandboxImage: NODE_IMAGES.pause.name, handlers: RUNTIME_HANDLERS }),
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
  const parts = new Map<string, ManagedProcess>();
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const ctr = async (args: string[]): Promise<string> => (await exec(containerdBinary("ctr"), ["--address", layout.containerdSocket, "--namespace", "k8s.io", ...args])).stdout;

  const startContainerd = async (): Promise<void> => {
    const env = { PATH: `${dirname(containerdBinary("containerd"))}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}` };
    const containerd = startProcess({ name: "containerd", command: containerdBinary("containerd"), args: ["--config", layout.containerdConfig], logFile: join(layout.logsDir, "containerd.log"), env });
    parts.set("containerd", containerd);
    await untilExit([containerd], waitFor(() => ctr(["version"]), { timeoutMs: 20_000, intervalMs: 50, message: "containerd to answer" }));
  };
  const startKubelet = async (): Promise<number> => {
    const since = Date.now();
    const labels = Object.entries(options.labels ?? {}).map(([key, value]) => `${key}=${value}`);
    const args = [
      `--config=${layout.kubeletConfig}`,
      `--kubeconfig=${layout.kubeconfig}`,
      `--root-dir=${layout.kubeletRoot}`,
      `--cert-dir=${layout.kubeletCertDir}`,
      `--hostname-override=${name}`,
      `--node-ip=${hostAddress()}`,
      ...(labels.length ? [`--node-labels=${labels.join(",")}`] : []),
      "-v=2",
    ];
    const kubelet = startProcess({ name: "kubelet", command: kubeletBinary(), args, logFile: join(layout.logsDir, "kubelet.log") });
    parts.set("kubelet", kubelet);
    await untilExit([kubelet, parts.get("containerd")!], waitSchedulable(core, [name], READY_TIMEOUT_MS));
    return Date.now() - since;
  };
  const stopParts = async (): Promise<void> => {
    await parts.get("kubelet")?.stop(5000);
    await parts.get("containerd")?.stop(5000);
    parts.clear();
  };

  let stopping: Promise<string[]> | undefined;
  try {
    await writeConfigs(layout, cluster, address);
    await startContainerd();
    for (const image of ["pause", "busybox"] as const) await ctr(["images", "import", "--platform", "linux/amd64", nodeImageArchive(image)]);
    const readyMs = await startKubelet();
    return {
      name,
      dir: layout.dir,
      logsDir: layout.logsDir,
      containerdSocket: layout.containerdSocket,
      readyMs,
      logFiles: () => Object.fromEntries([...parts.values()].map((p) => [p.name, p.logFile])),
      ctr,
      podInterfaces: () => (existsSync(`/sys/class/net/${BRIDGE}/brif`) ? readdirSync(`/sys/class/net/${BRIDGE}/brif`) : []),
      async sandboxRuntime(podUid) {
        const filter = `labels."io.kubernetes.pod.uid"==${podUid},labels."io.cri-containerd.kind"==sandbox`;
        const [id] = (await ctr(["containers", "list", "--quiet", filter])).split("\n").filter(Boolean);
        if (!id) throw new Error(`containerd has no sandbox of pod ${podUid}`);
        return sandboxRuntimeOf(JSON.parse(await ctr(["containers", "info", id])) as ContainerInfo);
      },
      async restartKubelet() {
        await parts.get("kubelet")?.stop(0, "SIGKILL");
        await startKubelet();
      },
      async restartContainerd() {
        await parts.get("containerd")?.stop(0, "SIGKILL");
        await startContainerd();
      },
      leftovers: () => leftovers(before, layout.dir),
      stop() {
        stopping ??= (async () => {
          await stopParts();
          const notes = sweepHost(before, layout.dir);
          forgetSweep();
          await core.deleteNode({ name }).catch(() => undefined);
          return notes;
        })();
        return stopping;
      },
    };
  } catch (error) {
    const logs = [...parts.values()].map((p) => `--- ${p.name}\n${tail(p.logFile, 20)}`).join("\n");
    await stopParts();
    sweepHost(before, layout.dir);
    forgetSweep();
    await core.deleteNode({ name }).catch(() => undefined);
    throw new Error(`the real node did not start: ${(error as Error).message}\n${logs}`, { cause: error });
  }
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
