import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { apiStatus } from "../kube/errors.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy, parsePolicy, POLICY_GROUP, POLICY_NAME, POLICY_PLURAL, POLICY_VERSION } from "../policy/schema.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../kube/peerpod.js";
import { buildReport, type NodeInfo, type PodInfo, type StatusReport } from "./report.js";

/** Reads pods, PeerPods, nodes and the policy in force from the cluster and builds the report. */
export async function collectStatus(kc: KubeConfig): Promise<StatusReport> {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const [pods, nodes, peerPods, policyObject] = await Promise.all([
    core.listPodForAllNamespaces(),
    core.listNode(),
    custom.listClusterCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL }).catch(notFoundAs({ items: [] })),
    custom.getClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL, name: POLICY_NAME }).catch(notFoundAs(undefined)),
  ]);
  const parsed = policyObject ? parsePolicy(policyObject) : undefined;
  const generation = (policyObject as { metadata?: { generation?: number } } | undefined)?.metadata?.generation ?? 0;
  const policy = compilePolicy(parsed?.ok ? parsed.spec : defaultPolicy(), generation);
  return buildReport(pods.items as PodInfo[], (peerPods as { items: PeerPod[] }).items, nodes.items as NodeInfo[], policy, Date.now());
}

function notFoundAs<T>(fallback: T): (error: unknown) => T {
  return (error) => {
    if (apiStatus(error) === 404) return fallback;
    throw error;
  };
}
