import { writeFile } from "node:fs/promises";
import { stringify } from "yaml";

export interface KubeconfigSpec {
  server: string;
  caFile: string;
  token: string;
  user: string;
}

/** A kubeconfig with one cluster, one token user and one context: usable by client-node, kubectl and the Go components. */
export function kubeconfigYaml({ server, caFile, token, user }: KubeconfigSpec): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "peerpods-e2e", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: user, context: { cluster: "peerpods-e2e", user, namespace: "default" } }],
    "current-context": user,
    preferences: {},
  });
}

export async function writeKubeconfig(path: string, spec: KubeconfigSpec): Promise<string> {
  await writeFile(path, kubeconfigYaml(spec), { mode: 0o600 });
  return path;
}
