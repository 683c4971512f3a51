import { randomBytes } from "node:crypto";
import { readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../log/logger.js";
import { VM_FILES } from "./args.js";
import { parseVmRecord, type VmRecord } from "./state.js";

const ID_PATTERN = /^vm-[0-9a-f]{10}$/;
/** A folder without a record older than this is what a crash in the middle of `create` left. */
const ABANDONED_AFTER_MS = 120_000;

/** Whether `id` can name a VM of this provider (anything else is unknown, never a path). */
export const isVmId = (id: string): boolean => ID_PATTERN.test(id);

export const newVmId = (): string => `vm-${randomBytes(5).toString("hex")}`;

/** The record in a VM's folder; undefined when there is none or it cannot be read. */
export async function readRecord(dir: string): Promise<VmRecord | undefined> {
  try {
    return parseVmRecord(await readFile(join(dir, VM_FILES.record), "utf8"));
  } catch {
    return undefined;
  }
}

/** Replaces a VM's record in one step, so a crash leaves the old or the new one, never half of either. */
export async function writeRecord(dir: string, record: VmRecord): Promise<void> {
  const file = join(dir, VM_FILES.record);
  const temp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`);
  await rename(temp, file);
}

/** Every VM record under `vmsDir`; folders a crash left without one are cleaned up once they are old enough. */
export async function listRecords(vmsDir: string, log: Logger): Promise<VmRecord[]> {
  let ids: string[];
  try {
    ids = (await readdir(vmsDir)).filter(isVmId);
  } catch {
    return [];
  }
  const records = await Promise.all(
    ids.map(async (id) => {
      const dir = join(vmsDir, id);
      const record = await readRecord(dir);
      if (!record) await removeIfAbandoned(dir, log);
      return record;
    }),
  );
  return records.filter((record): record is VmRecord => record !== undefined);
}

async function removeIfAbandoned(dir: string, log: Logger): Promise<void> {
  try {
    if (Date.now() - (await stat(dir)).mtimeMs < ABANDONED_AFTER_MS) return;
    await rm(dir, { recursive: true, force: true });
    log.warn({ dir }, "removed a qemu VM folder without a record");
  } catch {
    // gone already
  }
}
