import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION } from "../kube/annotations.js";
import { MIB, type Envelope } from "../kube/envelope.js";
import { instanceName, type PeerPod } from "../kube/peerpod.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import type { InstanceType } from "../policy/schema.js";
import { selectInstanceType } from "../policy/select.js";
import { instanceSpecFor, podCommand } from "../providers/instance-spec.js";
import type { Instance, InstanceSpec } from "../providers/types.js";
import type { SandboxTarget } from "./annotations.js";

/** What the cluster knows about the sandbox's pod. */
export interface PodRef {
  uid: string;
  /** For the involvedObject of Events on the pod. */
  resourceVersion?: string;
  /** The webhook's choice (`peerpods.io/instance-type`), if the pod went through it. */
  instanceType?: string;
  /** The first container's command and args, for the VM's user data. */
  command?: string[];
}

/** The worker's PeerPod record of the pod, if it has one. */
export interface WorkerRecord {
  podUID: string;
  instanceName: string;
  instanceType: string;
  instanceID?: string;
}

export interface VmRequest {
  sandboxId: string;
  target: SandboxTarget;
  pod?: PodRef;
  record?: WorkerRecord;
  clusterId: string;
}

export type VmPlan = { ok: true; spec: InstanceSpec } | { ok: false; reason: string };

const NOTHING: Envelope = { cpuMillis: 0, memoryBytes: 0, gpus: 0 };

/**
 * The instance CreateVM asks the provider for. A known pod gets exactly the VM the worker would
 * create (`instanceSpecFor`); an unknown pod gets a VM sized from the shim's annotations within
 * the policy, named after the sandbox.
 */
export function planInstance(request: VmRequest, policy: CompiledPolicy): VmPlan {
  const { target, pod, record } = request;
  const uid = record?.podUID ?? pod?.uid ?? target.uid;
  const chosen = knownType(policy, record?.instanceType) ?? knownType(policy, pod?.instanceType);
  const selection = chosen ? { ok: true as const, instanceType: chosen } : typeFromAnnotations(policy, target);
  if (!selection.ok) return { ok: false, reason: selection.reason };
  const name = record?.instanceName ?? (uid ? instanceName(uid) : `pp-sandbox-${request.sandboxId}`);
  const owner = { podUID: uid, namespace: target.namespace, name: target.name, command: pod?.command };
  return { ok: true, spec: instanceSpecFor(request.clusterId, name, selection.instanceType, owner) };
}

/** What the hypervisor needs of the sandbox's pod. */
export function podRef(pod: V1Pod): PodRef | undefined {
  const uid = pod.metadata?.uid;
  if (!uid) return undefined;
  const { resourceVersion, annotations } = pod.metadata ?? {};
  const instanceType = annotations?.[ANNOTATION.instanceType];
  const command = podCommand(pod);
  return { uid, ...(resourceVersion && { resourceVersion }), ...(instanceType && { instanceType }), ...(command.length ? { command } : {}) };
}

/** What the hypervisor needs of the worker's PeerPod record. */
export function workerRecord(record: PeerPod): WorkerRecord {
  const { podUID, instanceName, instanceType } = record.spec;
  const instanceID = record.status?.instanceID ?? undefined;
  return instanceID ? { podUID, instanceName, instanceType, instanceID } : { podUID, instanceName, instanceType };
}

function knownType(policy: CompiledPolicy, name: string | undefined): InstanceType | undefined {
  return name === undefined ? undefined : policy.instanceTypes.get(name);
}

/** machine_type names the type outright (Kata always sends its configured vCPUs and memory too, so they only size a VM when no type is named). */
function typeFromAnnotations(policy: CompiledPolicy, target: SandboxTarget): ReturnType<typeof selectInstanceType> {
  const namespace = target.namespace ?? "";
  if (target.machineType !== undefined) return selectInstanceType(policy, namespace, NOTHING, target.machineType);
  const envelope: Envelope = { cpuMillis: (target.vcpus ?? 0) * 1000, memoryBytes: (target.memoryMiB ?? 0) * MIB, gpus: 0 };
  return selectInstanceType(policy, namespace, envelope);
}

const isLive = (instance: Instance): boolean => instance.state === "pending" || instance.state === "running";

/** Of the instances tagged for a pod, the one to attach to: live, ready first, then the newest. */
export function pickLive(instances: readonly Instance[]): Instance | undefined {
  return instances
    .filter(isLive)
    .sort((a, b) => Number(b.ready) - Number(a.ready) || b.createdAt.getTime() - a.createdAt.getTime())[0];
}
