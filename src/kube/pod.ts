import { objectKey } from "./keys.js";

/** The parts of a core/v1 Pod, as JSON on the wire, that peerpods reads or writes. */

export type ResourceList = Record<string, string>;

export interface ResourceRequirements {
  requests?: ResourceList;
  limits?: ResourceList;
  [key: string]: unknown;
}

export interface Container {
  name: string;
  resources?: ResourceRequirements;
  restartPolicy?: string;
  [key: string]: unknown;
}

export interface PodSpec {
  runtimeClassName?: string | null;
  containers: Container[];
  initContainers?: Container[];
  readinessGates?: { conditionType: string }[];
  overhead?: ResourceList;
  resources?: ResourceRequirements;
  nodeName?: string;
  [key: string]: unknown;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec: PodSpec;
  status?: Record<string, unknown>;
}

/** `namespace/name` for logs and messages (generateName pods have no name at admission). */
export function podKey(namespace: string | undefined, meta: ObjectMeta | undefined): string {
  const name = meta?.name || (meta?.generateName ? `${meta.generateName}*` : "<unnamed>");
  return objectKey({ namespace: namespace || meta?.namespace || "default", name });
}
