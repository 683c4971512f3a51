import type { AgentOptions } from "node:https";
import { KubeConfig, type Cluster, type ConnectOptions, type DispatcherOptions, type RequestContext } from "@kubernetes/client-node";

type Dispatcher = Parameters<RequestContext["setDispatcher"]>[0];

const TLS_OPTIONS = ["ca", "cert", "key", "pfx", "passphrase", "rejectUnauthorized", "servername"] as const;

const sameOption = (a: unknown, b: unknown): boolean => a === b || (Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b));

/**
 * client-node 2.x gives every API call and watch a new undici Agent, i.e. a new connection pool, so
 * every call paid a TLS handshake and a fresh SecureContext (CA parsing, native memory). This config
 * hands every call one keep-alive dispatcher per set of TLS options, replaced only when those change
 * (rotated client certificates). Proxy dispatchers are left alone.
 */
class KeepAliveKubeConfig extends KubeConfig {
  #shared: { connect: ConnectOptions; dispatcher: Dispatcher } | undefined;
  /** The TLS options of the dispatcher client-node is building right now; undefined for a proxy. */
  #building: ConnectOptions | undefined;

  override createDispatcherOptions(cluster: Cluster | null, agentOptions: AgentOptions): DispatcherOptions {
    const options = super.createDispatcherOptions(cluster, agentOptions);
    this.#building = options.type === "agent" ? options.connect : undefined;
    return options;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    // client-node builds the dispatcher from createDispatcherOptions and sets it on the context in one
    // synchronous step, so #building describes the dispatcher passed here even with calls in parallel.
    const setDispatcher = context.setDispatcher.bind(context);
    context.setDispatcher = (fresh) => setDispatcher(this.#reuse(fresh));
    await super.applySecurityAuthentication(context);
  }

  #reuse(fresh: Dispatcher): Dispatcher {
    const connect = this.#building;
    this.#building = undefined;
    if (!connect) return fresh;
    const shared = this.#shared;
    // A dispatcher that was never used holds no connection, so the fresh one is simply dropped.
    if (shared && TLS_OPTIONS.every((name) => sameOption(shared.connect[name], connect[name]))) return shared.dispatcher;
    // close() lets requests in flight on the old pool finish (watches included) before it goes.
    shared?.dispatcher.close().catch(() => undefined);
    this.#shared = { connect, dispatcher: fresh };
    return fresh;
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
