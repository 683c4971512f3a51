import { Agent } from "node:https";
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

const TLS_OPTIONS = ["ca", "cert", "key", "pfx", "passphrase", "rejectUnauthorized", "servername"] as const;

const sameOption = (a: unknown, b: unknown): boolean => a === b || (Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b));

/**
 * client-node 1.x builds a new https.Agent for every API call, so every call paid a TLS handshake
 * and a fresh SecureContext (CA parsing, native memory). This config hands every call one keep-alive
 * agent with the same TLS options, rebuilt only when those change (rotated client certificates).
 * Proxy agents and plain http are left alone.
 */
class KeepAliveKubeConfig extends KubeConfig {
  #agent: Agent | undefined;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const created = context.getAgent();
    if (!created || created.constructor !== Agent) return;
    const options = (created as Agent).options;
    if (!this.#agent || !TLS_OPTIONS.every((name) => sameOption(this.#agent!.options[name], options[name]))) {
      this.#agent?.destroy();
      this.#agent = new Agent({ ...options, keepAlive: true });
    }
    context.setAgent(this.#agent);
  }
}

/** Kubeconfig from a path, else $KUBECONFIG / ~/.kube/config, else the in-cluster service account. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KeepAliveKubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error("no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a pod");
  return kc;
}
