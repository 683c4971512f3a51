import { KubeConfig } from "@kubernetes/client-node";

/** Kubeconfig from a path, else $KUBECONFIG / ~/.kube/config, else the in-cluster service account. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error("no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a pod");
  return kc;
}
