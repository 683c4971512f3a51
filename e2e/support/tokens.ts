import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { writeKubeconfig } from "../cluster/kubeconfig.js";

export interface ServiceAccountRef {
  namespace: string;
  name: string;
}

/**
 * A kubeconfig that authenticates as a ServiceAccount, with a token from the TokenRequest API
 * (what a pod's projected token volume holds), written to `path`.
 */
export async function serviceAccountKubeconfig(admin: KubeConfig, account: ServiceAccountRef, path: string, caFile: string): Promise<string> {
  const core = admin.makeApiClient(CoreV1Api);
  const request = await core.createNamespacedServiceAccountToken({
    name: account.name,
    namespace: account.namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = request.status?.token;
  if (!token) throw new Error(`TokenRequest for ${account.namespace}/${account.name} returned no token`);
  return writeKubeconfig(path, { server: admin.getCurrentCluster()!.server, caFile, token, user: `system:serviceaccount:${account.namespace}:${account.name}` });
}
