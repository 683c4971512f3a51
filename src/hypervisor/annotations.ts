import { ANNOTATION } from "../kube/annotations.js";

/** Annotations the Kata shim passes to CreateVM (containerd's CRI names; CRI-O's sandbox name form is parsed too). */
export const SANDBOX_ANNOTATION = {
  name: "io.kubernetes.cri.sandbox-name",
  namespace: "io.kubernetes.cri.sandbox-namespace",
  uid: "io.kubernetes.cri.sandbox-uid",
  machineType: ANNOTATION.kataMachineType,
  vcpus: ANNOTATION.kataVcpus,
  memory: ANNOTATION.kataMemory,
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
  volumeName?: string;
  /** Values that were sent but could not be used, for the log. */
  ignored: string[];
}

/** CRI-O names the sandbox `k8s_<pod>_<namespace>_<uid>_<attempt>`; pod names and namespaces cannot contain `_`. */
const CRIO_SANDBOX_NAME = /^k8s_([^_]+)_([^_]+)_([^_]+)_\d+$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseSandboxAnnotations(annotations: Readonly<Record<string, string>>): SandboxTarget {
  const target: SandboxTarget = { ignored: [] };
  const text = (key: string): string | undefined => {
    const value = annotations[key]?.trim();
    return value ? value : undefined;
  };

  let name = text(SANDBOX_ANNOTATION.name);
  let namespace = text(SANDBOX_ANNOTATION.namespace);
  let uid = text(SANDBOX_ANNOTATION.uid);
  const crio = name === undefined ? null : CRIO_SANDBOX_NAME.exec(name);
  if (crio) {
    name = crio[1];
    namespace ??= crio[2];
    uid ??= crio[3];
  }
  if (name !== undefined) {
    if (name.length <= 253 && DNS_SUBDOMAIN.test(name)) target.name = name;
    else target.ignored.push(`sandbox name ${JSON.stringify(name.slice(0, 80))}`);
  }
  if (namespace !== undefined) {
    if (namespace.length <= 63 && DNS_LABEL.test(namespace)) target.namespace = namespace;
    else target.ignored.push(`sandbox namespace ${JSON.stringify(namespace.slice(0, 80))}`);
  }
  if (uid !== undefined) {
    if (/^[0-9a-fA-F-]{1,64}$/.test(uid)) target.uid = uid.toLowerCase();
    else target.ignored.push(`sandbox uid ${JSON.stringify(uid.slice(0, 80))}`);
  }

  const machineType = text(SANDBOX_ANNOTATION.machineType);
  if (machineType !== undefined) target.machineType = machineType;
  const volumeName = text(SANDBOX_ANNOTATION.volumeName);
  if (volumeName !== undefined) target.volumeName = volumeName;

  const count = (key: string, max: number, label: string): number | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (n >= 1 && n <= max) return n;
    // Kata sends 0 when nothing was configured: that is absence, not an error.
    if (n !== 0) target.ignored.push(`${label} ${JSON.stringify(value.slice(0, 40))}`);
    return undefined;
  };
  const vcpus = count(SANDBOX_ANNOTATION.vcpus, 1024, "default_vcpus");
  if (vcpus !== undefined) target.vcpus = vcpus;
  const memoryMiB = count(SANDBOX_ANNOTATION.memory, 16 * 1024 * 1024, "default_memory");
  if (memoryMiB !== undefined) target.memoryMiB = memoryMiB;
  return target;
}

/** `namespace/name` for logs and errors, with `?` for what the shim did not say. */
export function describeTarget(target: SandboxTarget): string {
  return `${target.namespace ?? "?"}/${target.name ?? "?"}`;
}
