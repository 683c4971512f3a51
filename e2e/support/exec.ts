import { Exec, type KubeConfig, type V1Status } from "@kubernetes/client-node";
import { Writable } from "node:stream";

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The apiserver's final status: "Success", or "Failure" with the exit code in its details. */
  status: V1Status;
}

const collect = (): { stream: Writable; text: () => string } => {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString() };
};

/** Runs `command` in a pod's container through the apiserver's exec subresource (what `kubectl exec` does). */
export async function execInPod(kc: KubeConfig, namespace: string, pod: string, container: string, command: string[], timeoutMs = 20_000): Promise<ExecResult> {
  const stdout = collect();
  const stderr = collect();
  let timer: NodeJS.Timeout | undefined;
  const status = await new Promise<V1Status>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`exec ${command.join(" ")} in ${namespace}/${pod}: no status after ${timeoutMs} ms`)), timeoutMs);
    new Exec(kc).exec(namespace, pod, container, command, stdout.stream, stderr.stream, null, false, resolve).catch(reject);
  }).finally(() => clearTimeout(timer));
  return { stdout: stdout.text(), stderr: stderr.text(), status };
}
