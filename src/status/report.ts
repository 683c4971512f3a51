import type { CompiledPolicy } from "../policy/compiled.js";
import { ANNOTATION } from "../kube/annotations.js";
import { objectKey } from "../kube/keys.js";
import type { PeerPod } from "../kube/peerpod.js";

/** The slice of a Pod / Node the status report reads (as returned by the API, dates as strings or Dates). */
export interface PodInfo {
  metadata?: { name?: string; namespace?: string; uid?: string; creationTimestamp?: string | Date; annotations?: Record<string, string>; deletionTimestamp?: unknown };
  spec?: { runtimeClassName?: string; nodeName?: string };
  status?: { phase?: string };
}

export interface NodeInfo {
  metadata?: { name?: string };
  status?: { capacity?: Record<string, string>; allocatable?: Record<string, string> };
}

export interface PeerPodRow {
  pod: string;
  node: string;
  instanceType: string;
  phase: string;
  instanceId: string;
  ageSeconds: number;
  readySeconds: number | null;
  message: string;
}

export interface NodeRow {
  node: string;
  used: number;
  allocatable: number;
  capacity: number;
}

/** One pooled instance type: the policy's targets and how the live peer pods got their VMs. */
export interface PoolRow {
  instanceType: string;
  min: number;
  max: number;
  maxIdleSeconds: number | null;
  hits: number;
  misses: number;
}

export interface StatusReport {
  peerPods: PeerPodRow[];
  nodes: NodeRow[];
  warmPool: { pools: PoolRow[]; maxIdleCost: number | null };
  quota: { vms: { used: number; limit: number | null }; vcpus: { used: number; limit: number | null } };
  policy: { generation: number; runtimeClassNames: string[]; provider: string; strategy: string; vmsPerNode: number; instanceTypes: string[] };
}

const seconds = (from: string | Date | undefined, to: number): number => (from ? Math.max(0, Math.round((to - new Date(from).getTime()) / 1000)) : 0);
const isLive = (pod: PodInfo): boolean => !pod.metadata?.deletionTimestamp && pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed";

function peerPodRow(pod: PodInfo, record: PeerPod | undefined, now: number): PeerPodRow {
  const meta = pod.metadata ?? {};
  const node = pod.spec?.nodeName ?? "";
  const status = record?.status ?? {};
  return {
    pod: objectKey(meta),
    node,
    instanceType: meta.annotations?.[ANNOTATION.instanceType] ?? "",
    phase: status.phase ?? (node ? "Pending" : "Unscheduled"),
    instanceId: status.instanceID ?? "",
    ageSeconds: seconds(meta.creationTimestamp, now),
    readySeconds: timeToReady(meta.creationTimestamp, status.readyTime),
    message: status.message ?? "",
  };
}

function timeToReady(created: string | Date | undefined, readyTime: string | null | undefined): number | null {
  return readyTime && created ? seconds(created, new Date(readyTime).getTime()) : null;
}

/** Builds the report from what the API returned. Pure. */
export function buildReport(pods: PodInfo[], peerPods: PeerPod[], nodes: NodeInfo[], policy: CompiledPolicy, now: number): StatusReport {
  const resource = policy.spec.extendedResourceName;
  const records = new Map(peerPods.map((p) => [objectKey(p.metadata), p]));
  const peer = pods.filter((p) => policy.isPeerPod(p.spec?.runtimeClassName, p.metadata?.namespace ?? ""));
  const rows = peer.map((pod) => peerPodRow(pod, records.get(objectKey(pod.metadata)), now));
  const bound = new Map<string, number>();
  for (const pod of peer) if (pod.spec?.nodeName && isLive(pod)) bound.set(pod.spec.nodeName, (bound.get(pod.spec.nodeName) ?? 0) + 1);
  const nodeRows = nodes
    .filter((n) => n.status?.capacity?.[resource] !== undefined)
    .map((n) => ({
      node: n.metadata?.name ?? "",
      used: bound.get(n.metadata?.name ?? "") ?? 0,
      allocatable: Number(n.status?.allocatable?.[resource] ?? 0),
      capacity: Number(n.status?.capacity?.[resource] ?? 0),
    }));
  const live = peer.filter((p) => p.spec?.nodeName && isLive(p));
  const vcpus = live.reduce((sum, p) => sum + (policy.instanceTypes.get(p.metadata?.annotations?.[ANNOTATION.instanceType] ?? "")?.vcpus ?? 0), 0);
  return {
    peerPods: rows.sort((a, b) => a.pod.localeCompare(b.pod)),
    nodes: nodeRows.sort((a, b) => a.node.localeCompare(b.node)),
    warmPool: warmPoolReport(policy, peerPods),
    quota: { vms: { used: live.length, limit: policy.spec.limits.maxVMs ?? null }, vcpus: { used: vcpus, limit: policy.spec.limits.maxVCPUs ?? null } },
    policy: {
      generation: policy.generation,
      runtimeClassNames: policy.spec.runtimeClassNames,
      provider: policy.spec.provider.name,
      strategy: policy.spec.scheduling.strategy,
      vmsPerNode: policy.spec.nodes.vmsPerNode,
      instanceTypes: policy.spec.instanceTypes.map((t) => t.name),
    },
  };
}

function warmPoolReport(policy: CompiledPolicy, peerPods: PeerPod[]): StatusReport["warmPool"] {
  const spec = policy.spec.warmPool;
  const claims = (type: string, result: "hit" | "miss"): number => peerPods.filter((p) => p.spec.instanceType === type && p.status?.warmPool === result).length;
  return {
    pools: (spec?.pools ?? []).map((pool) => ({
      instanceType: pool.instanceType,
      min: pool.min,
      max: pool.max ?? pool.min,
      maxIdleSeconds: pool.maxIdleSeconds ?? null,
      hits: claims(pool.instanceType, "hit"),
      misses: claims(pool.instanceType, "miss"),
    })),
    maxIdleCost: spec?.maxIdleCost ?? null,
  };
}

const duration = (s: number | null): string => {
  if (s === null) return "-";
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
};

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [headers, ...rows].map((r) => r.map((v, i) => (v ?? "").padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

/** The human-readable form of the report. */
export function renderReport(report: StatusReport): string {
  const limit = (q: { used: number; limit: number | null }): string => `${q.used}/${q.limit ?? "∞"}`;
  const p = report.policy;
  return [
    "PEER PODS",
    report.peerPods.length
      ? table(
          ["NAMESPACE/NAME", "NODE", "TYPE", "VM PHASE", "INSTANCE", "AGE", "READY AFTER"],
          report.peerPods.map((r) => [r.pod, r.node || "-", r.instanceType || "-", r.phase, r.instanceId || "-", duration(r.ageSeconds), duration(r.readySeconds)]),
        )
      : "(none)",
    "",
    "NODES",
    report.nodes.length ? table(["NODE", "USED", "ALLOCATABLE", "CAPACITY"], report.nodes.map((n) => [n.node, String(n.used), String(n.allocatable), String(n.capacity)])) : "(no node advertises VM slots)",
    "",
    "WARM POOL (live peer pods' VMs: from the pool / booted cold)",
    report.warmPool.pools.length
      ? table(
          ["TYPE", "MIN", "MAX", "MAX IDLE", "HITS", "MISSES"],
          report.warmPool.pools.map((r) => [r.instanceType, String(r.min), String(r.max), duration(r.maxIdleSeconds), String(r.hits), String(r.misses)]),
        ) + (report.warmPool.maxIdleCost === null ? "" : `\nidle cost capped at ${report.warmPool.maxIdleCost}/h`)
      : "(none)",
    "",
    `QUOTA  VMs ${limit(report.quota.vms)}  vCPUs ${limit(report.quota.vcpus)}`,
    `POLICY generation ${p.generation}, provider ${p.provider}, ${p.strategy}, ${p.vmsPerNode} VMs/node, runtime classes ${p.runtimeClassNames.join(",")}, types ${p.instanceTypes.join(",")}`,
  ].join("\n");
}
