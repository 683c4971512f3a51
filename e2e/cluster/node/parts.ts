import type { CoreV1Api } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { networkInterfaces } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { untilExit, waitSchedulable } from "../cluster.js";
import { startProcess, tail, type ManagedProcess } from "../process.js";
import { waitFor } from "../../support/wait.js";
import type { NodeLayout } from "./config.js";
import { containerdBinary, kubeletBinary } from "./paths.js";

const exec = promisify(execFile);
const READY_TIMEOUT_MS = 60_000;

/** The host's first non-loopback IPv4 address: the kubelet refuses a loopback --node-ip. */
function hostAddress(): string {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
  if (!address) throw new Error("the real node needs a non-loopback IPv4 address on this host for the kubelet's --node-ip");
  return address;
}

/** A node's containerd and kubelet processes: started, killed and stopped one by one. */
/** More shims for containerd to find on its PATH, the environment it hands them, and the CRI handlers they serve. */
export interface ContainerdExtra {
  shimDirs?: string[];
  env?: Record<string, string>;
  /** CRI handler → runtime type, as in ContainerdInputs. */
  runtimeTypes?: Record<string, string>;
}

export class NodeParts {
  readonly #running = new Map<"containerd" | "kubelet", ManagedProcess>();

  constructor(
    private readonly layout: NodeLayout,
    private readonly name: string,
    private readonly labels: Record<string, string>,
    private readonly core: CoreV1Api,
    private readonly containerdExtra: ContainerdExtra = {},
  ) {}

  /** `ctr` against this containerd, in the CRI's namespace (k8s.io). */
  ctr = async (args: string[]): Promise<string> =>
    (await exec(containerdBinary("ctr"), ["--address", this.layout.containerdSocket, "--namespace", "k8s.io", ...args])).stdout;

  /** Resolves once containerd answers. */
  async startContainerd(): Promise<void> {
    // containerd finds its shim on PATH
    const { shimDirs = [], env: extraEnv = {} } = this.containerdExtra;
    const path = [...shimDirs, dirname(containerdBinary("containerd")), process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"].join(":");
    const env = { ...extraEnv, PATH: path };
    const containerd = this.#start("containerd", containerdBinary("containerd"), ["--config", this.layout.containerdConfig], env);
    await untilExit([containerd], waitFor(() => this.ctr(["version"]), { timeoutMs: 20_000, intervalMs: 50, message: "containerd to answer" }));
  }

  /** Resolves with the time from its start until the node is Ready and untainted. */
  async startKubelet(): Promise<number> {
    const since = Date.now();
    const labels = Object.entries(this.labels).map(([key, value]) => `${key}=${value}`);
    const args = [
      `--config=${this.layout.kubeletConfig}`,
      `--kubeconfig=${this.layout.kubeconfig}`,
      `--root-dir=${this.layout.kubeletRoot}`,
      `--cert-dir=${this.layout.kubeletCertDir}`,
      `--hostname-override=${this.name}`,
      `--node-ip=${hostAddress()}`,
      ...(labels.length ? [`--node-labels=${labels.join(",")}`] : []),
      // the kubelet's minute GC counts a container whose StartContainer is still running as dead, and
      // keeping one dead instance per container it removes the previous one: a peer pod's start takes
      // seconds (the rootfs goes to the VM), so a restart would lose lastState and `logs --previous`
      // whenever the tick falls in it (docs/runtime.md "Not yet")
      "--maximum-dead-containers-per-container=2",
      "-v=2",
    ];
    const kubelet = this.#start("kubelet", kubeletBinary(), args);
    await untilExit([kubelet, ...this.#running.values()], waitSchedulable(this.core, [this.name], READY_TIMEOUT_MS));
    return Date.now() - since;
  }

  /** SIGKILL, as a crash would: containerd's shims and the containers keep running. */
  async kill(part: "containerd" | "kubelet"): Promise<void> {
    await this.#running.get(part)?.stop(0, "SIGKILL");
    this.#running.delete(part);
  }

  /** The kubelet first, so it does not see its runtime go. */
  async stop(): Promise<void> {
    await this.#running.get("kubelet")?.stop(5000);
    await this.#running.get("containerd")?.stop(5000);
    this.#running.clear();
  }

  logFiles(): Record<string, string> {
    return Object.fromEntries([...this.#running.values()].map((p) => [p.name, p.logFile]));
  }

  tails(lines: number): string {
    return [...this.#running.values()].map((p) => `--- ${p.name}\n${tail(p.logFile, lines)}`).join("\n");
  }

  #start(name: "containerd" | "kubelet", command: string, args: string[], env?: NodeJS.ProcessEnv): ManagedProcess {
    const part = startProcess({ name, command, args, logFile: join(this.layout.logsDir, `${name}.log`), env });
    this.#running.set(name, part);
    return part;
  }
}
