import { PatchStrategy, type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import type { Operation } from "fast-json-patch";
import { kubeRequest } from "./kube-request.js";
import { transform, unsupportedFields, type Kustomization, type PatchEntry } from "./kustomize.js";
import { waitFor } from "./wait.js";

export const FIELD_MANAGER = "peerpods-e2e";

/** The objects of a manifest file, or what a folder's kustomization.yaml renders (resources followed recursively, overlays applied). */
export async function loadManifests(path: string): Promise<KubernetesObject[]> {
  if ((await stat(path)).isDirectory()) {
    const file = join(path, "kustomization.yaml");
    const kustomization = parseYaml(await readFile(file, "utf8")) as Kustomization;
    const unsupported = unsupportedFields(kustomization);
    if (unsupported.length) throw new Error(`${file}: the e2e loader does not implement ${unsupported.join(", ")}`);
    const nested = await Promise.all((kustomization.resources ?? []).map((resource) => loadManifests(join(path, resource))));
    const patches = new Map<PatchEntry, Operation[]>();
    for (const entry of kustomization.patches ?? []) {
      const text = entry.patch ?? (entry.path ? await readFile(join(path, entry.path), "utf8") : "");
      const ops: unknown = parseYaml(text);
      if (!Array.isArray(ops)) throw new Error(`${file}: patch ${entry.path ?? "(inline)"} is not a JSON 6902 patch (a list of operations)`);
      patches.set(entry, ops as Operation[]);
    }
    return transform(nested.flat(), kustomization, (entry) => patches.get(entry)!);
  }
  return parseObjects(await readFile(path, "utf8"), path);
}

/** The objects of a multi-document YAML stream (empty documents dropped); `source` names it in errors. */
export function parseObjects(text: string, source: string): KubernetesObject[] {
  return parseAllDocuments(text).flatMap((document) => {
    if (document.errors.length) throw new Error(`${source}: ${document.errors[0]!.message}`);
    const object = document.toJS() as KubernetesObject | null;
    return object ? [object] : [];
  });
}

/** The manifests' objects with the webhook configurations pointed at a webhook outside the cluster. */
export function withWebhookUrl(objects: KubernetesObject[], url: string, caBundle: string): KubernetesObject[] {
  return objects.map((object) => {
    if (object.kind !== "MutatingWebhookConfiguration" && object.kind !== "ValidatingWebhookConfiguration") return object;
    const { webhooks = [] } = object as KubernetesObject & { webhooks?: { clientConfig?: { service?: { path?: string }; url?: string } }[] };
    const pathOf = (clientConfig: { service?: { path?: string }; url?: string } = {}): string =>
      clientConfig.service?.path ?? (clientConfig.url ? new URL(clientConfig.url).pathname : "");
    return {
      ...object,
      webhooks: webhooks.map((webhook) => ({ ...webhook, clientConfig: { url: `${url}${pathOf(webhook.clientConfig)}`, caBundle } })),
    } as KubernetesObject;
  });
}

const FIRST = new Set(["Namespace", "CustomResourceDefinition"]);

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

/** Maps kinds to their REST paths through the apiserver's discovery, one request per API group version. */
export class ResourcePaths {
  readonly #groups = new Map<string, Promise<ApiResource[]>>();
  constructor(private readonly kc: KubeConfig) {}

  async of(object: KubernetesObject): Promise<string> {
    const { apiVersion = "", kind = "", metadata = {} } = object;
    const prefix = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let resources = this.#groups.get(apiVersion);
    if (!resources) {
      resources = kubeRequest<{ resources: ApiResource[] }>(this.kc, "GET", prefix).then((list) => list.resources);
      this.#groups.set(apiVersion, resources);
      resources.catch(() => this.#groups.delete(apiVersion));
    }
    const resource = (await resources).find((r) => r.kind === kind && !r.name.includes("/"));
    if (!resource) {
      this.#groups.delete(apiVersion);
      throw new Error(`the apiserver serves no ${kind} in ${apiVersion}`);
    }
    const namespace = resource.namespaced ? `/namespaces/${metadata.namespace ?? "default"}` : "";
    return `${prefix}${namespace}/${resource.name}/${metadata.name}`;
  }
}

/**
 * Server-side applies objects as `kubectl apply --server-side --force-conflicts` does: namespaces
 * and CRDs first, then (once the CRDs are established) everything else. Returns what was stored,
 * or with `dryRun` (`--dry-run=server`) what would be: validated and admitted, nothing stored.
 */
export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[], { dryRun = false } = {}): Promise<KubernetesObject[]> {
  const paths = new ResourcePaths(kc);
  const query = `fieldManager=${FIELD_MANAGER}&force=true${dryRun ? "&dryRun=All" : ""}`;
  const apply = async (object: KubernetesObject): Promise<KubernetesObject> =>
    kubeRequest<KubernetesObject>(kc, "PATCH", `${await paths.of(object)}?${query}`, object, PatchStrategy.ServerSideApply);
  const first = objects.filter((o) => FIRST.has(o.kind ?? ""));
  const applied = await Promise.all(first.map(apply));
  const crds = applied.filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata!.name!);
  await Promise.all(crds.map((name) => waitForEstablished(kc, name)));
  for (const object of objects.filter((o) => !FIRST.has(o.kind ?? ""))) {
    // discovery of a just-established CRD's group can lag a moment behind
    applied.push(await waitFor(() => apply(object), { timeoutMs: 10_000, message: `${object.kind} ${object.metadata?.name} to be applied` }));
  }
  return applied;
}

/**
 * Deletes the MutatingWebhookConfigurations among `objects`: the cluster is shared by the suites,
 * and a webhook left pointing at a stopped peerpods would refuse every later suite's peer pods.
 */
export async function removeWebhookConfigs(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  for (const config of objects.filter((o) => o.kind === "MutatingWebhookConfiguration")) {
    await kubeRequest(kc, "DELETE", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${config.metadata!.name!}`).catch((error: unknown) => {
      if ((error as { code?: number }).code !== 404) throw error;
    });
  }
}

async function waitForEstablished(kc: KubeConfig, name: string): Promise<void> {
  type Crd = { status?: { conditions?: { type: string; status: string }[] } };
  await waitFor(
    async () => {
      const crd = await kubeRequest<Crd>(kc, "GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    },
    { timeoutMs: 20_000, message: `CRD ${name} to be established` },
  );
}

/** The repository's manifests folder. */
export const MANIFESTS_DIR = fileURLToPath(new URL("../../manifests", import.meta.url));
/** The overlay for peerpods running on the host next to a local control plane (what the e2e suite and `npm run dev` apply). */
export const LOCAL_OVERLAY_DIR = join(MANIFESTS_DIR, "overlays", "local");
