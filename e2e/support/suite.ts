import { PatchStrategy, setHeaderOptions, type CoreV1Api, type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR } from "./manifests.js";
import { waitFor } from "./wait.js";

const isWebhookConfig = (o: KubernetesObject): boolean => o.kind === "MutatingWebhookConfiguration";

/**
 * Applies the local overlay without its webhook configuration, which each suite points at its own
 * peerpods (withWebhookUrl) and deletes when done (removeWebhookConfigs). Returns that configuration.
 */
export async function installLocalOverlay(admin: KubeConfig): Promise<KubernetesObject[]> {
  const manifests = await loadManifests(LOCAL_OVERLAY_DIR);
  await applyObjects(admin, manifests.filter((o) => !isWebhookConfig(o)));
  return manifests.filter(isWebhookConfig);
}

/** A namespace whose default ServiceAccount exists, so pods can be admitted in it. */
export async function createNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } });
  await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: name }), { message: `the default ServiceAccount of ${name}` });
}

/**
 * Deletes a suite's pods at once and then its namespace, so pods a failed test left are gone from
 * the API before the next suite starts a worker that would take them for peer pods of its own.
 */
export async function removeNamespaceNow(core: CoreV1Api, name: string): Promise<void> {
  await core.deleteCollectionNamespacedPod({ namespace: name, gracePeriodSeconds: 0 }).catch(() => undefined);
  await core.deleteNamespace({ name }).catch(() => undefined);
}

/** Writes VM slots into nodes' status by hand, for suites that run no advertiser. */
export async function giveVmSlots(core: CoreV1Api, nodes: readonly string[], resource: string, slots: number): Promise<void> {
  const body = { status: { capacity: { [resource]: String(slots) }, allocatable: { [resource]: String(slots) } } };
  for (const name of nodes) await core.patchNodeStatus({ name, body }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
}
