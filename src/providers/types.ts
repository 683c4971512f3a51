import type { VmTlsFiles } from "../agent-tls/issue.js";
import type { AgentTls } from "../agent-tls/store.js";
import { objectKey } from "../kube/keys.js";
import type { Logger } from "../log/logger.js";
import type { InstanceType } from "../policy/schema.js";

/** Tag keys every peerpods VM carries, so a crash at any point can be reconciled from the cloud's inventory. */
export const TAG = {
  cluster: "peerpods.io/cluster",
  podUid: "peerpods.io/pod-uid",
  namespace: "peerpods.io/namespace",
  podName: "peerpods.io/pod-name",
  instanceType: "peerpods.io/instance-type",
  /** The instance name the VM's agent certificate was issued for (kept when a pool VM is claimed). */
  agentIdentity: "peerpods.io/agent-identity",
  /** Set on warm-pool VMs that no pod has claimed yet. */
  pool: "peerpods.io/pool",
} as const;

export type Tags = Record<string, string>;

/** `namespace/name` of the pod a VM's tags name, when they name one. */
export function taggedPod(tags: Tags): string | undefined {
  const namespace = tags[TAG.namespace];
  const name = tags[TAG.podName];
  return namespace !== undefined && name !== undefined ? objectKey({ namespace, name }) : undefined;
}

/** Provider-neutral lifecycle state of an instance. */
export type InstanceState = "pending" | "running" | "stopping" | "terminated";

export interface InstanceSpec {
  /** Stable, unique per pod (derived from the pod UID): the provider's idempotency key. */
  name: string;
  instanceType: InstanceType;
  image?: string;
  /** Passed to the VM at boot; never holds credentials. */
  userData: string;
  tags: Tags;
  zone?: string;
  /**
   * The VM's agent certificate, its key and the trust bundle (`withAgentCertificates`), delivered
   * root-only in the VM's boot data and nowhere else: never logged, tagged or recorded.
   */
  agentTls?: VmTlsFiles;
}

/** What a pod makes of a warm-pool VM it claims. */
export interface ClaimSpec {
  /** The pod's instance name: from now on `create` with this name finds the claimed VM. */
  name: string;
  /** The tags the VM carries from now on (the pod's, as `create` would have set them); the pool tag goes. */
  tags: Tags;
  /** The pod's data, delivered to the booted VM through its agent channel (its boot parameters are fixed). */
  userData: string;
}

export interface Instance {
  id: string;
  name: string;
  state: InstanceState;
  /** The VM reported ready (agent handshake or provider status check). */
  ready: boolean;
  instanceType: string;
  tags: Tags;
  createdAt: Date;
  /**
   * The VM's private IPv4 address, the one the node reaches it at (the pod network's tunnels end
   * there): a cloud VM's private IP, a qemu VM's address on the provider's bridge. Absent where the
   * VM has none of its own (qemu user-mode network: its agent is reached through a forwarded port).
   */
  privateIp?: string;
  /** Where the agent in the VM can be reached: `unix:/path` or `tcp:host:port`. */
  agentEndpoint?: string;
  zone?: string;
  /** What the VM booted from (an AMI id, the qemu image folder), where the provider knows it. */
  image?: string;
  /** Why the VM is in its state (e.g. a boot failure), for Events and status. */
  message?: string;
}

export interface ProviderHealth {
  healthy: boolean;
  message?: string;
}

/** What callers may do about a failed call. */
export type ProviderErrorKind = "retryable" | "quota" | "invalid" | "notFound";

export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What every cloud call may be given besides its arguments. */
export interface CallOptions {
  /**
   * Cancels the call: its waits end at once with the signal's reason, and a VM it was starting is
   * stopped again where the provider can tell (peerpods stopping, or losing its Lease).
   */
  signal?: AbortSignal;
}

/**
 * A cloud. `create` is idempotent per pod: a second call with the same `spec.name` / pod-UID tag
 * returns the instance the first one made. `get` returns undefined for an unknown id; `delete` of an
 * unknown id succeeds.
 */
export interface Provider {
  readonly name: string;
  /** How often the worker may list booting VMs to see them ready; a cloud whose listing is costly asks for less often. */
  readonly readyPollMs?: number;
  create(spec: InstanceSpec, options?: CallOptions): Promise<Instance>;
  get(id: string, options?: CallOptions): Promise<Instance | undefined>;
  /** Instances whose tags include every key/value of `tagFilter`. */
  list(tagFilter: Tags, options?: CallOptions): Promise<Instance[]>;
  delete(id: string, options?: CallOptions): Promise<void>;
  /**
   * Hands an idle warm-pool VM to a pod: delivers the pod's data first, then swaps the pool tag for
   * the pod's tags, so a VM still tagged as pool has not been handed over yet. Idempotent. Throws
   * `notFound` when the VM is gone. Providers without it get no warm pool.
   */
  claim?(id: string, claim: ClaimSpec, options?: CallOptions): Promise<Instance>;
  health(): Promise<ProviderHealth>;
  /** Releases clients and timers, and cancels what is in flight (a qemu probe boot); running VMs are left as they are. */
  close(): Promise<void>;
}

/** What every provider is built with besides its own settings. */
export interface ProviderOptions {
  clusterId: string;
  /** Folder for provider state that must outlive a restart (qemu VMs, sim inventory). */
  stateDir: string;
  log: Logger;
  /** Mutual TLS to the VMs' agents, for a provider that speaks to them itself (qemu hands a claimed VM its pod's data); absent: plain TCP. */
  agentTls?: AgentTls;
}
