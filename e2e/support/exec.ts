import { Exec, type KubeConfig, type V1Status } from "@kubernetes/client-node";
import { type Readable, Writable } from "node:stream";

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

export interface ExecOptions {
  /** Stream to the command's stdin (`kubectl exec -i`); its end closes the command's stdin (unless tty). */
  stdin?: Readable;
  /** A terminal (`kubectl exec -t`) of this size; stdout then carries stderr too. */
  terminal?: { rows: number; columns: number };
  timeoutMs?: number;
}

/** Runs `command` in a pod's container through the apiserver's exec subresource (what `kubectl exec` does). */
export async function execInPod(kc: KubeConfig, namespace: string, pod: string, container: string, command: string[], options: ExecOptions = {}): Promise<ExecResult> {
  const { stdin = null, terminal, timeoutMs = 20_000 } = options;
  const stdout = collect();
  const stderr = collect();
  // the exec client sends a stdout with rows and columns as the terminal's size (kubectl's resize)
  if (terminal) Object.assign(stdout.stream, terminal);
  let timer: NodeJS.Timeout | undefined;
  const status = await new Promise<V1Status>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`exec ${command.join(" ")} in ${namespace}/${pod}: no status after ${timeoutMs} ms`)), timeoutMs);
    new Exec(kc).exec(namespace, pod, container, command, stdout.stream, terminal ? null : stderr.stream, stdin, terminal !== undefined, resolve).catch(reject);
  }).finally(() => clearTimeout(timer));
  return { stdout: stdout.text(), stderr: stderr.text(), status };
}
