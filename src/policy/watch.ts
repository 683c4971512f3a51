import { CustomObjectsApi, type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { eventTarget, type EventRecorder } from "../kube/events.js";
import { startInformer, type WatchedInformer } from "../kube/informer.js";
import type { Logger } from "../log/logger.js";
import { describeErrors } from "./issues.js";
import { POLICY_GROUP, POLICY_KIND, POLICY_NAME, POLICY_PLURAL, POLICY_VERSION } from "./schema.js";
import type { PolicyStore } from "./store.js";

type PolicyObject = KubernetesObject & { spec?: unknown };

/**
 * Keeps the store on the cluster's PeerPodPolicy `default`: every accepted change applies at once;
 * a rejected one leaves the last good policy in force, with a Warning Event (and the store's error log).
 * With no `default` policy in the cluster the embedded defaults apply.
 */
export function watchClusterPolicy(kc: KubeConfig, store: PolicyStore, events: EventRecorder, log: Logger): WatchedInformer<PolicyObject> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const path = `/apis/${POLICY_GROUP}/${POLICY_VERSION}/${POLICY_PLURAL}`;
  const list = async () => api.listClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL });
  // The cluster object last looked at, by uid and generation: comparing with the store's generation
  // alone would skip a new object's generation 1, which the embedded defaults also carry.
  let seen: string | undefined;
  const apply = (object: PolicyObject): void => {
    if (object.metadata?.name !== POLICY_NAME) return;
    const generation = object.metadata.generation ?? undefined;
    const version = `${object.metadata.uid}/${generation}`;
    if (generation !== undefined && version === seen) return;
    seen = version;
    const result = store.update({ document: { ...object, apiVersion: `${POLICY_GROUP}/${POLICY_VERSION}`, kind: POLICY_KIND }, generation, source: "cluster" });
    const target = eventTarget({ apiVersion: `${POLICY_GROUP}/${POLICY_VERSION}`, kind: POLICY_KIND }, { ...object.metadata, name: POLICY_NAME });
    if (result.ok) {
      log.info({ generation: result.policy.generation }, "policy updated from the cluster");
      events.record(target, "Normal", "PolicyApplied", `generation ${result.policy.generation} is in force`);
    } else {
      // the store has logged it
      events.record(target, "Warning", "PolicyRejected", `generation ${generation} rejected, generation ${store.current.generation} stays in force: ${describeErrors(result.errors)}`);
    }
  };
  return startInformer<PolicyObject>(kc, path, list as never, log, (informer) => {
    informer.on("add", apply);
    informer.on("update", apply);
    informer.on("delete", (object) => {
      if (object.metadata?.name !== POLICY_NAME) return;
      seen = undefined;
      log.warn("PeerPodPolicy default deleted; the embedded defaults apply");
      store.update({ document: {}, source: "cluster" });
    });
  });
}
