import { matchesSelector, slotsOf, ZONE_LABEL, type StringMap } from "../policy/nodes.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import type { Usage } from "../policy/limits.js";
import { ANNOTATION } from "../kube/annotations.js";

/** The parts of a Node the extender reads (informer objects and wire JSON alike). */
export interface NodeObject {
  metadata?: { name?: string; labels?: StringMap; annotations?: StringMap };
}

/** The parts of a Pod the extender reads. */
export interface PodObject {
  metadata?: { uid?: string; namespace?: string; annotations?: StringMap };
  spec?: { runtimeClassName?: string | null; nodeName?: string };
  status?: { phase?: string };
}

export interface NodeEntry {
  readonly labels: StringMap | undefined;
  readonly annotations: StringMap | undefined;
  readonly zone: string | undefined;
  matches: boolean;
  slots: number;
}

interface PodEntry {
  namespace: string;
  runtimeClass: string;
  node: string | undefined;
  terminal: boolean;
  instanceType: string | undefined;
  /** vCPUs counted against the limits; 0 when not counted. */
  vcpus: number;
  counted: boolean;
}

/** How long a pod that passed the filter holds its share of the limits before its binding is seen. */
export const RESERVATION_TTL_MS = 30_000;

const TERMINAL = new Set(["Succeeded", "Failed"]);

/**
 * The extender's view of the cluster, kept incrementally from informer events: per-node peer-pod
 * counts and cluster-wide use. A peer pod counts from the moment it is bound until it is gone or
 * terminal; a pod that passed the filter is reserved until its binding is seen (or the TTL ends),
 * so pods scheduled faster than the watch reports them cannot overshoot the limits.
 */
export class SchedulingState {
  #policy: CompiledPolicy;
  readonly #nodes = new Map<string, NodeEntry>();
  readonly #pods = new Map<string, PodEntry>();
  readonly #vmsOn = new Map<string, number>();
  #vms = 0;
  #vcpus = 0;
  /** uid → reservation; insertion order is expiry order because the TTL is constant. */
  readonly #reservations = new Map<string, { vcpus: number; expiresAt: number }>();
  #reservedVcpus = 0;

  constructor(
    policy: CompiledPolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.#policy = policy;
  }

  get policy(): CompiledPolicy {
    return this.#policy;
  }

  /** Re-evaluates every node and pod under a new policy (selector, slots, runtime classes, catalog). */
  setPolicy(policy: CompiledPolicy): void {
    this.#policy = policy;
    for (const entry of this.#nodes.values()) {
      entry.matches = matchesSelector(entry.labels, policy);
      entry.slots = slotsOf(entry.annotations, policy).slots;
    }
    for (const entry of this.#pods.values()) {
      this.#uncount(entry);
      this.#count(entry);
    }
  }

  upsertNode(node: NodeObject): void {
    const name = node.metadata?.name;
    if (!name) return;
    const labels = node.metadata?.labels;
    const annotations = node.metadata?.annotations;
    this.#nodes.set(name, {
      labels,
      annotations,
      zone: labels?.[ZONE_LABEL],
      matches: matchesSelector(labels, this.#policy),
      slots: slotsOf(annotations, this.#policy).slots,
    });
  }

  deleteNode(node: NodeObject): void {
    if (node.metadata?.name) this.#nodes.delete(node.metadata.name);
  }

  upsertPod(pod: PodObject): void {
    const uid = pod.metadata?.uid;
    const runtimeClass = pod.spec?.runtimeClassName;
    if (!uid || !runtimeClass) return;
    const previous = this.#pods.get(uid);
    if (previous) this.#uncount(previous);
    const entry: PodEntry = {
      namespace: pod.metadata?.namespace ?? "default",
      runtimeClass,
      node: pod.spec?.nodeName || undefined,
      terminal: TERMINAL.has(pod.status?.phase ?? ""),
      instanceType: pod.metadata?.annotations?.[ANNOTATION.instanceType],
      vcpus: 0,
      counted: false,
    };
    this.#pods.set(uid, entry);
    this.#count(entry);
    if (entry.node) this.#release(uid);
  }

  deletePod(pod: PodObject): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const entry = this.#pods.get(uid);
    if (entry) this.#uncount(entry);
    this.#pods.delete(uid);
    this.#release(uid);
  }

  /** Holds one VM and `vcpus` of the limits for a pod that passed the filter, until its binding is seen. */
  reserve(uid: string, vcpus: number): void {
    const pod = this.#pods.get(uid);
    if (pod?.node) return;
    this.#release(uid);
    this.#reservations.set(uid, { vcpus, expiresAt: this.now() + RESERVATION_TTL_MS });
    this.#reservedVcpus += vcpus;
  }

  node(name: string): NodeEntry | undefined {
    return this.#nodes.get(name);
  }

  /** Peer pods bound to the node and not finished. */
  vmsOn(name: string): number {
    return this.#vmsOn.get(name) ?? 0;
  }

  /** Cluster-wide use: bound peer pods plus reservations, leaving out the pod `exceptUid` itself. */
  usage(exceptUid?: string): Usage {
    this.#expire();
    const own = exceptUid === undefined ? undefined : this.#reservations.get(exceptUid);
    return {
      vms: this.#vms + this.#reservations.size - (own ? 1 : 0),
      vcpus: this.#vcpus + this.#reservedVcpus - (own?.vcpus ?? 0),
    };
  }

  #count(entry: PodEntry): void {
    if (!entry.node || entry.terminal || !this.#policy.isPeerPod(entry.runtimeClass, entry.namespace)) return;
    entry.counted = true;
    entry.vcpus = (entry.instanceType && this.#policy.instanceTypes.get(entry.instanceType)?.vcpus) || 0;
    this.#vms += 1;
    this.#vcpus += entry.vcpus;
    this.#vmsOn.set(entry.node, this.vmsOn(entry.node) + 1);
  }

  #uncount(entry: PodEntry): void {
    if (!entry.counted || !entry.node) return;
    entry.counted = false;
    this.#vms -= 1;
    this.#vcpus -= entry.vcpus;
    entry.vcpus = 0;
    const left = this.vmsOn(entry.node) - 1;
    if (left > 0) this.#vmsOn.set(entry.node, left);
    else this.#vmsOn.delete(entry.node);
  }

  #release(uid: string): void {
    const reservation = this.#reservations.get(uid);
    if (!reservation) return;
    this.#reservations.delete(uid);
    this.#reservedVcpus -= reservation.vcpus;
  }

  #expire(): void {
    const now = this.now();
    for (const [uid, reservation] of this.#reservations) {
      if (reservation.expiresAt > now) return;
      this.#release(uid);
    }
  }
}
