import { z } from "zod";
import type { Instance } from "../types.js";

const vmBase = z.object({
  id: z.string(),
  name: z.string(),
  instanceType: z.string(),
  vcpus: z.number().int(),
  memoryMiB: z.number().int(),
  tags: z.record(z.string(), z.string()),
  createdAt: z.string(),
  pid: z.number().int().positive(),
  accelerator: z.enum(["kvm", "tcg"]),
  machine: z.enum(["microvm", "q35"]),
  /** The image folder the VM booted from (absent in records of earlier versions). */
  image: z.string().optional(),
});

/** A VM on the provider's VPC: a tap on its bridge, the agent at `privateIp:agentPort`. */
const vpcVm = vmBase.extend({ network: z.literal("vpc"), privateIp: z.string(), agentPort: z.number().int() });
/** A VM on qemu's user-mode network, the agent forwarded to 127.0.0.1:`hostPort` (records of earlier versions name no network). */
const userVm = vmBase.extend({ network: z.literal("user").default("user"), hostPort: z.number().int() });

/** What `create` writes to `<stateDir>/qemu/<id>/instance.json`: enough to rebuild the inventory. */
export const vmRecordSchema = z.union([vpcVm, userVm]);
export type VmRecord = z.output<typeof vmRecordSchema>;

/** Where the VM's agent is reached from the host. */
export function agentEndpoint(record: VmRecord): string {
  return record.network === "vpc" ? `tcp:${record.privateIp}:${record.agentPort}` : `tcp:127.0.0.1:${record.hostPort}`;
}

export function parseVmRecord(text: string): VmRecord | undefined {
  try {
    const parsed = vmRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export interface AgentStatus {
  /** Guest uptime when the agent reported ready. */
  bootMs?: number;
  workloadExitCode?: number;
}

/**
 * Reads lines the guest agent writes to its status port: `ready boot_ms=N ...`, `workload exited
 * code=N`, `heartbeat uptime_ms=N workload=none|running|exited:N`. Callers may pass only the head
 * and the tail of a long log: the ready line comes first, every heartbeat repeats the workload state.
 */
export function parseAgentStatus(text: string): AgentStatus {
  const status: AgentStatus = {};
  for (const line of text.split("\n")) {
    const ready = /^ready boot_ms=(\d+)/.exec(line);
    if (ready) status.bootMs = Number(ready[1]);
    const exited = /^workload exited code=(\d+)/.exec(line) ?? /^heartbeat .*\bworkload=exited:(\d+)/.exec(line);
    if (exited) status.workloadExitCode = Number(exited[1]);
  }
  return status;
}

export interface Observation {
  alive: boolean;
  stopping: boolean;
  status: AgentStatus;
  /** When the agent last wrote to its status port (ms since epoch), if ever. */
  lastStatusAtMs?: number;
  nowMs: number;
  heartbeatSeconds: number;
  /** Why the qemu process ended, from its log, when it did. */
  exitReason?: string;
}

/** A heartbeat older than this many intervals (and at least 30 s) means the agent stopped. */
const MISSED_HEARTBEATS = 3;

/** The provider-neutral view of a VM from its record and what was observed of it just now. */
export function toInstance(record: VmRecord, seen: Observation): Instance {
  const base = {
    id: record.id,
    name: record.name,
    instanceType: record.instanceType,
    tags: record.tags,
    createdAt: new Date(record.createdAt),
    agentEndpoint: agentEndpoint(record),
    ...(record.network === "vpc" && { privateIp: record.privateIp }),
    ...(record.image && { image: record.image }),
  };
  if (!seen.alive) return { ...base, state: "terminated", ready: false, message: seen.stopping ? "deleted" : `qemu exited${seen.exitReason ? `: ${seen.exitReason}` : ""}` };
  if (seen.stopping) return { ...base, state: "stopping", ready: false };
  if (seen.status.bootMs === undefined) return { ...base, state: "pending", ready: false, message: "booting" };
  const silentMs = seen.nowMs - (seen.lastStatusAtMs ?? 0);
  const limitMs = Math.max(30_000, MISSED_HEARTBEATS * seen.heartbeatSeconds * 1000);
  const workload = seen.status.workloadExitCode === undefined ? "" : `; workload exited with code ${seen.status.workloadExitCode}`;
  if (silentMs > limitMs) return { ...base, state: "running", ready: false, message: `agent heartbeat lost ${Math.round(silentMs / 1000)} s ago${workload}` };
  return { ...base, state: "running", ready: true, message: `agent ready after ${seen.status.bootMs} ms of guest uptime${workload}` };
}
