import type { KubernetesObject } from "@kubernetes/client-node";
import fastJsonPatch, { type Operation } from "fast-json-patch";

/**
 * The part of kustomize the repository's manifests use, so the e2e suite applies exactly what
 * `kubectl apply -k` would without needing kubectl: `resources`, JSON 6902 `patches` with a
 * target, `replicas` and `images`. Anything else is refused rather than silently ignored.
 */
export interface Kustomization {
  resources?: string[];
  patches?: PatchEntry[];
  replicas?: { name: string; count: number }[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

export interface PatchEntry {
  path?: string;
  patch?: string;
  target: { group?: string; version?: string; kind?: string; name?: string; namespace?: string };
}

const KNOWN_FIELDS = new Set(["apiVersion", "kind", "resources", "patches", "replicas", "images"]);
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]);

/** Fields of a kustomization.yaml this loader does not implement (empty when it can render it). */
export function unsupportedFields(kustomization: object): string[] {
  return Object.keys(kustomization).filter((key) => !KNOWN_FIELDS.has(key));
}

/** Applies a kustomization's transformations to the objects its resources produced (a new array; inputs untouched). */
export function transform(objects: KubernetesObject[], kustomization: Kustomization, patchOps: (entry: PatchEntry) => Operation[]): KubernetesObject[] {
  let result = objects.map((object) => structuredClone(object));
  for (const entry of kustomization.patches ?? []) {
    const ops = patchOps(entry);
    const matches = result.filter((object) => targets(entry.target, object));
    if (!matches.length) throw new Error(`patch ${entry.path ?? "(inline)"}: no object matches target ${JSON.stringify(entry.target)}`);
    result = result.map((object) => (targets(entry.target, object) ? (fastJsonPatch.applyPatch(object, ops, true, false).newDocument as KubernetesObject) : object));
  }
  for (const { name, count } of kustomization.replicas ?? []) {
    const workloads = result.filter((object) => WORKLOAD_KINDS.has(object.kind ?? "") && object.metadata?.name === name);
    if (!workloads.length) throw new Error(`replicas: no workload named ${name}`);
    for (const workload of workloads) ((workload as { spec: { replicas?: number } }).spec ??= {}).replicas = count;
  }
  for (const image of kustomization.images ?? []) for (const object of result) retag(object, image);
  return result;
}

function targets(target: PatchEntry["target"], object: KubernetesObject): boolean {
  const [group, version] = (object.apiVersion ?? "").includes("/") ? object.apiVersion!.split("/") : ["", object.apiVersion];
  return (
    (target.kind === undefined || target.kind === object.kind) &&
    (target.name === undefined || target.name === object.metadata?.name) &&
    (target.namespace === undefined || target.namespace === object.metadata?.namespace) &&
    (target.group === undefined || target.group === group) &&
    (target.version === undefined || target.version === version)
  );
}

interface Container {
  image?: string;
}

function retag(object: KubernetesObject, image: NonNullable<Kustomization["images"]>[number]): void {
  const pod = (object as { spec?: { template?: { spec?: { containers?: Container[]; initContainers?: Container[] } } } }).spec?.template?.spec;
  for (const container of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
    const reference = container.image ?? "";
    // the tag's colon is the first after the last slash (a registry's port comes before it)
    const colon = reference.indexOf(":", reference.lastIndexOf("/") + 1);
    const name = colon < 0 ? reference : reference.slice(0, colon);
    if (name !== image.name) continue;
    const tag = image.newTag ?? (colon < 0 ? undefined : reference.slice(colon + 1));
    container.image = `${image.newName ?? name}${tag ? `:${tag}` : ""}`;
  }
}
