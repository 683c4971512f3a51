/**
 * What the demo shows from inside the sample pod's VM: its container's log (`kubectl logs`), read
 * through the pods/log API, and a `kubectl exec` answer through the exec subresource.
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { execInPod } from "../support/exec.js";
import { waitFor } from "../support/wait.js";
import { formatElapsed } from "./progress.js";

/** The sample container's command: what it prints comes from the VM it runs in. */
export const SAMPLE_SCRIPT = "uname -r; nproc; sleep 3600";
/** The exec'd command: the VM's memory, which the instance type sizes. */
export const EXEC_COMMAND = ["head", "-1", "/proc/meminfo"];

export interface InVm {
  /** The container's log lines: the kernel release, then the vCPU count. */
  logLines: string[];
  /** Pod created → its log shows both lines, in ms. */
  logsMs: number;
  execOutput: string;
  /** The exec's request → its final status, in ms. */
  execMs: number;
}

/** Waits for the sample container's two log lines, then runs EXEC_COMMAND in it. */
export async function readFromVm(kc: KubeConfig, pod: { namespace: string; name: string; container: string; createdAt: number }): Promise<InVm> {
  const core = kc.makeApiClient(CoreV1Api);
  const { namespace, name, container } = pod;
  const logLines = await waitFor(
    async () => {
      const lines = (await core.readNamespacedPodLog({ namespace, name, container })).split("\n").filter(Boolean);
      return lines.length >= 2 ? lines : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, message: `the log of ${namespace}/${name} to show uname -r and nproc` },
  );
  const logsMs = Date.now() - pod.createdAt;
  const started = Date.now();
  const exec = await execInPod(kc, namespace, name, container, EXEC_COMMAND);
  const execMs = Date.now() - started;
  if (exec.status.status !== "Success") throw new Error(`kubectl exec ${name} -- ${EXEC_COMMAND.join(" ")}: ${exec.status.message ?? JSON.stringify(exec.status)} ${exec.stderr}`);
  return { logLines, logsMs, execOutput: exec.stdout.trim(), execMs };
}

/** The demo's lines for what came from the VM, set beside the host's kernel and cores. */
export function inVmLines(result: InVm, pod: string, host: { kernelRelease: string; cpus: number }, instanceType: { name: string; vcpus: number }): string[] {
  const [kernel = "", cpus = ""] = result.logLines;
  return [
    `kubectl logs ${pod} (pod created → logs visible ${formatElapsed(result.logsMs)}):`,
    `  ${kernel.padEnd(24)} uname -r: the pod VM image's kernel (the host runs ${host.kernelRelease})`,
    `  ${cpus.padEnd(24)} nproc: the vCPUs of instance type ${instanceType.name} (${instanceType.vcpus}; the host has ${host.cpus})`,
    `kubectl exec ${pod} -- ${EXEC_COMMAND.join(" ")} (round trip ${formatElapsed(result.execMs)}):`,
    `  ${result.execOutput}`,
  ];
}
