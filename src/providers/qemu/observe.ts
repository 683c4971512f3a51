import { access, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Instance } from "../types.js";
import { VM_FILES } from "./args.js";
import { isVmProcessAlive } from "./process.js";
import { parseAgentStatus, toInstance, type AgentStatus, type VmRecord } from "./state.js";

/** Bytes of status.log read from each end: the ready line is first, every heartbeat repeats the rest. */
const STATUS_READ_BYTES = 4096;

/** What a VM in `dir` is now: its process, the stopping mark and what its agent last reported. */
export async function observeVm(dir: string, record: VmRecord, heartbeatSeconds: number): Promise<Instance> {
  const [alive, stopping, status] = await Promise.all([isVmProcessAlive(record.pid, dir), exists(join(dir, VM_FILES.stopping)), readEnds(join(dir, VM_FILES.status))]);
  return toInstance(record, {
    alive,
    stopping,
    status: parseAgentStatus(status.text),
    lastStatusAtMs: status.mtimeMs,
    nowMs: Date.now(),
    heartbeatSeconds,
    exitReason: alive ? undefined : await lastLogLine(dir),
  });
}

/** What the agent of the VM in `dir` has reported so far. */
export async function agentStatus(dir: string): Promise<AgentStatus> {
  return parseAgentStatus((await readEnds(join(dir, VM_FILES.status))).text);
}

/** The last line qemu wrote to its log: why it exited or did not start. */
export async function lastLogLine(dir: string): Promise<string | undefined> {
  const text = await readFile(join(dir, VM_FILES.qemuLog), "utf8").catch(() => "");
  return text.trim().split("\n").filter(Boolean).pop()?.slice(0, 500);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The first and last few KiB of a file and its modification time; empty when it does not exist. */
async function readEnds(path: string): Promise<{ text: string; mtimeMs?: number }> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch {
    return { text: "" };
  }
  try {
    const { size, mtimeMs } = await handle.stat();
    if (size <= 2 * STATUS_READ_BYTES) return { text: (await handle.readFile()).toString("utf8"), mtimeMs };
    const head = Buffer.alloc(STATUS_READ_BYTES);
    const tail = Buffer.alloc(STATUS_READ_BYTES);
    await handle.read(head, 0, STATUS_READ_BYTES, 0);
    await handle.read(tail, 0, STATUS_READ_BYTES, size - STATUS_READ_BYTES);
    return { text: `${head.toString("utf8")}\n${tail.toString("utf8")}`, mtimeMs };
  } finally {
    await handle.close();
  }
}
