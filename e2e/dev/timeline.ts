import type { CoreV1Event, V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { ANNOTATION, VM_READY_CONDITION } from "../../src/kube/annotations.js";
import type { PeerPod } from "../../src/kube/peerpod.js";

/** What the demo looks at on every tick: the sample pod, its PeerPod record and its Events. */
export interface Snapshot {
  pod?: V1Pod;
  record?: PeerPod;
  events: CoreV1Event[];
}

export interface Milestone {
  label: string;
  text: string;
}

/** The sequence a peer pod goes through, in order; each is reported once. */
export const MILESTONES = ["admitted", "scheduled", "worker", "VM booting", "VM ready", "pod Ready"] as const;


/** How the webhook rewrote the pod: the instance type it chose and what the pod now asks of its node. */
export function admission(pod: V1Pod): Milestone {
  const annotations = pod.metadata?.annotations ?? {};
  const original = annotations[ANNOTATION.originalResources];
  const requests = original ? (JSON.parse(original) as { containers?: Record<string, { requests?: Record<string, string> }> }).containers : undefined;
  const asked = Object.values(requests ?? {})
    .flatMap((container) => Object.entries(container.requests ?? {}).map(([name, value]) => `${name} ${value}`))
    .join(", ");
  const nodeRequest = Object.entries(pod.spec?.containers[0]?.resources?.requests ?? {})
    .map(([name, value]) => `${name}: ${value}`)
    .join(", ");
  const type = annotations[ANNOTATION.instanceType];
  const size = `${annotations[ANNOTATION.kataVcpus]} vCPU, ${annotations[ANNOTATION.kataMemory]} MiB`;
  return { label: "admitted", text: `the webhook chose instance type ${type} (${size}) for ${asked || "no requests"}; the pod now asks its node for ${nodeRequest}` };
}

/**
 * The milestones and Events not reported yet (`reported` is updated): scheduled, VM booting (with
 * where its console log is), VM ready (the worker's condition), pod Ready (which the kubelet grants
 * only once the readiness gate is True).
 */
export function progressLines(snapshot: Snapshot, reported: Set<string>, consoleLog: (instanceID: string) => string): Milestone[] {
  const lines: Milestone[] = [];
  const once = (key: string, label: string, text: string): void => {
    if (reported.has(key)) return;
    reported.add(key);
    lines.push({ label, text });
  };
  for (const event of [...snapshot.events].sort((a, b) => eventTime(a) - eventTime(b))) {
    once(`event:${event.metadata?.uid}:${event.count ?? 1}`, "event", `${event.type} ${event.reason} (${eventSource(event)}): ${event.message}`);
  }
  podMilestones(snapshot, once, consoleLog);
  return lines;
}

function podMilestones({ pod, record }: Snapshot, once: (key: string, label: string, text: string) => void, consoleLog: (instanceID: string) => string): void {
  const nodeName = boundTo({ pod, record });
  if (nodeName) once("scheduled", "scheduled", `bound to node ${nodeName}`);
  if (record) once("worker", "worker", `PeerPod record ${record.metadata.namespace}/${record.metadata.name}: creating a ${record.spec.instanceType} VM with the ${record.spec.provider} provider`);
  const instance = record?.status?.instanceID;
  if (instance) once("VM booting", "VM booting", `${record.spec.provider} VM ${instance} (${record.spec.instanceType}); console log: ${consoleLog(instance)}`);
  const vmReady = condition(pod, VM_READY_CONDITION);
  if (vmReady?.status === "True") once("VM ready", "VM ready", `${vmReady.message} (agent ${record?.status?.agentEndpoint})`);
  if (condition(pod, "Ready")?.status === "True") once("pod Ready", "pod Ready", `${pod!.metadata!.namespace}/${pod!.metadata!.name} is Ready`);
}

/** The pod and its record are read one after the other: a record (made only for a bound pod) may show up before the binding does. */
const boundTo = ({ pod, record }: Pick<Snapshot, "pod" | "record">): string | undefined => pod?.spec?.nodeName ?? record?.spec.nodeName;

const condition = (pod: V1Pod | undefined, type: string): V1PodCondition | undefined => pod?.status?.conditions?.find((c) => c.type === type);

const eventSource = (event: CoreV1Event): string => event.reportingComponent || event.source?.component || "";

function eventTime(event: CoreV1Event): number {
  const time = event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? event.metadata?.creationTimestamp;
  return time ? new Date(time).getTime() : 0;
}

/** One line for the live status: the pod's state, its node and VM, the uptime. */
export function statusLine(snapshot: Snapshot, uptime: string): string {
  const { pod, record } = snapshot;
  if (!pod) return `sample pod gone · up ${uptime}`;
  const ready = condition(pod, "Ready")?.status === "True" ? "Ready" : "not Ready";
  const vm = record?.status ? `VM ${record.status.instanceID ?? "-"} ${record.status.phase ?? ""}` : "no VM yet";
  return `${pod.metadata?.namespace}/${pod.metadata?.name} ${pod.status?.phase ?? "Pending"}, ${ready}, on ${pod.spec?.nodeName ?? "(unscheduled)"} · ${vm} · up ${uptime}`;
}
