import { ANNOTATION } from "../kube/annotations.js";
import { objectKey } from "../kube/keys.js";

/** Annotations the Kata shim passes to CreateVM (containerd's CRI names; CRI-O's sandbox name form is parsed too). */
export const SANDBOX_ANNOTATION = {
  name: "io.kubernetes.cri.sandbox-name",
  namespace: "io.kubernetes.cri.sandbox-namespace",
  uid: "io.kubernetes.cri.sandbox-uid",
  machineType: ANNOTATION.kataMachineType,
  vcpus: ANNOTATION.kataVcpus,
  memory: ANNOTATION.kataMemory,
  /** Sent by the shim for a sandbox's direct-assigned volume; peerpods attaches no volumes yet, so it is not read. */
  volumeName: "io.katacontainers.config.hypervisor.volume_name",
} as const;

/** Everything CreateVM can learn about the pod behind a sandbox. Only what was sent and valid is set. */
export interface SandboxTarget {
  name?: string;
  namespace?: string;
  /** Sent by CRI-O inside the sandbox name, or by runtimes that pass the sandbox-uid annotation. */
  uid?: string;
  machineType?: string;
  vcpus?: number;
  memoryMiB?: number;
  /** Values that were sent but could not be used, for the log. */
  ignored: string[];
}

/** CRI-O names the sandbox `k8s_<pod>_<namespace>_<uid>_<attempt>`; pod names and namespaces cannot contain `_`. */
const CRIO_SANDBOX_NAME = /^k8s_([^_]+)_([^_]+)_([^_]+)_\d+$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

type Read = (key: string) => string | undefined;

export function parseSandboxAnnotations(annotations: Readonly<Record<string, string>>): SandboxTarget {
  const target: SandboxTarget = { ignored: [] };
  const read: Read = (key) => annotations[key]?.trim() || undefined;
  readPodIdentity(read, target);
  const machineType = read(SANDBOX_ANNOTATION.machineType);
  if (machineType !== undefined) target.machineType = machineType;
  const vcpus = readCount(read, SANDBOX_ANNOTATION.vcpus, 1024, target.ignored);
  if (vcpus !== undefined) target.vcpus = vcpus;
  const memoryMiB = readCount(read, SANDBOX_ANNOTATION.memory, 16 * 1024 * 1024, target.ignored);
  if (memoryMiB !== undefined) target.memoryMiB = memoryMiB;
  return target;
}

function readPodIdentity(read: Read, target: SandboxTarget): void {
  let name = read(SANDBOX_ANNOTATION.name);
  let namespace = read(SANDBOX_ANNOTATION.namespace);
  let uid = read(SANDBOX_ANNOTATION.uid);
  const crio = name === undefined ? null : CRIO_SANDBOX_NAME.exec(name);
  if (crio) {
    name = crio[1];
    namespace ??= crio[2];
    uid ??= crio[3];
  }
  const keep = (value: string | undefined, valid: (v: string) => boolean, label: string): string | undefined => {
    if (value === undefined) return undefined;
    if (valid(value)) return value;
    target.ignored.push(`${label} ${JSON.stringify(value.slice(0, 80))}`);
    return undefined;
  };
  const validName = keep(name, (v) => v.length <= 253 && DNS_SUBDOMAIN.test(v), "sandbox name");
  const validNamespace = keep(namespace, (v) => v.length <= 63 && DNS_LABEL.test(v), "sandbox namespace");
  const validUid = keep(uid, (v) => /^[0-9a-fA-F-]{1,64}$/.test(v), "sandbox uid");
  if (validName !== undefined) target.name = validName;
  if (validNamespace !== undefined) target.namespace = validNamespace;
  if (validUid !== undefined) target.uid = validUid.toLowerCase();
}

/** A positive integer up to `max`; Kata sends 0 when nothing was configured, which is absence, not an error. */
function readCount(read: Read, key: string, max: number, ignored: string[]): number | undefined {
  const value = read(key);
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (n >= 1 && n <= max) return n;
  if (n !== 0) ignored.push(`${key.split(".").at(-1)} ${JSON.stringify(value.slice(0, 40))}`);
  return undefined;
}

/** `namespace/name` for logs and errors, with `?` for what the shim did not say. */
export function describeTarget(target: SandboxTarget): string {
  return objectKey({ namespace: target.namespace ?? "?", name: target.name ?? "?" });
}
