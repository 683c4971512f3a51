import type { Instance as Ec2Instance, InstanceStatus } from "@aws-sdk/client-ec2";
import type { Instance, InstanceState, Tags } from "../types.js";

/**
 * EC2's states in the provider-neutral terms. `shutting-down` cannot be undone, so it already
 * counts as terminated; a stopped instance still exists (and costs its volume) but will not come
 * back by itself, so it stays visible as stopping with a message rather than as gone.
 */
const STATES: Record<string, InstanceState> = {
  pending: "pending",
  running: "running",
  stopping: "stopping",
  stopped: "stopping",
  "shutting-down": "terminated",
  terminated: "terminated",
};

export function mapState(ec2State: string | undefined): InstanceState {
  return STATES[ec2State ?? ""] ?? "pending";
}

/** EC2 states in which an instance can still serve its pod. */
export function isLive(instance: Ec2Instance): boolean {
  const state = mapState(instance.State?.Name);
  return state === "pending" || state === "running";
}

export function tagsOf(instance: Ec2Instance): Tags {
  const tags: Tags = {};
  for (const tag of instance.Tags ?? []) if (tag.Key !== undefined) tags[tag.Key] = tag.Value ?? "";
  return tags;
}

/** Status checks pass, or EC2 has none to report (yet) for this instance. */
export function statusChecksPass(status: InstanceStatus | undefined): boolean {
  if (!status) return true;
  const passing = (value: string | undefined): boolean => value === undefined || value === "ok" || value === "not-applicable";
  return passing(status.InstanceStatus?.Status) && passing(status.SystemStatus?.Status);
}

export interface MapOptions {
  agentPort: number;
  /** Status of this instance from DescribeInstanceStatus; undefined when checks are off or none was reported. */
  status?: InstanceStatus;
}

export function toInstance(instance: Ec2Instance, options: MapOptions): Instance {
  const tags = tagsOf(instance);
  const state = mapState(instance.State?.Name);
  const id = instance.InstanceId ?? "";
  const privateIp = instance.PrivateIpAddress;
  const zone = instance.Placement?.AvailabilityZone;
  const message = stateMessage(instance, state);
  return {
    id,
    name: tags.Name ?? id,
    state,
    ready: state === "running" && statusChecksPass(options.status),
    instanceType: instance.InstanceType ?? "",
    tags,
    createdAt: instance.LaunchTime ?? new Date(0),
    ...(privateIp && { privateIp, agentEndpoint: `tcp:${privateIp}:${options.agentPort}` }),
    ...(zone && { zone }),
    ...(instance.ImageId && { image: instance.ImageId }),
    ...(message && { message }),
  };
}

/** Why a VM that is not running is where it is: EC2's own state name when ours is coarser, and its reason. */
function stateMessage(instance: Ec2Instance, state: InstanceState): string | undefined {
  const ec2State = instance.State?.Name;
  const reason = instance.StateReason?.Message ?? (instance.StateTransitionReason || undefined);
  if (state === "running" || (ec2State === state && !reason)) return undefined;
  return [`EC2 state ${ec2State ?? "unknown"}`, reason].filter(Boolean).join(": ");
}
