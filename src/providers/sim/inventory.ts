import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Tags } from "../types.js";

/** One simulated instance as the cloud keeps it. Times are epoch milliseconds. */
export interface SimRecord {
  id: string;
  name: string;
  instanceType: string;
  tags: Tags;
  zone?: string;
  address: string;
  createdAt: number;
  readyAt: number;
  /** The pod data a warm-pool claim delivered after boot. */
  userData?: string;
}

interface InventoryFile {
  version: 1;
  instances: SimRecord[];
}

/**
 * The simulated cloud's instances, optionally kept in a JSON file so they outlive a restart of peerpods
 * like a real cloud's do. Writes are atomic (temp file + rename) and coalesced. An edit of the file by
 * someone else (a test playing the cloud console) is picked up before the next call.
 */
export class Inventory {
  readonly records = new Map<string, SimRecord>();
  #mtimeMs = 0;
  #dirty = false;
  #writing: Promise<void> | undefined;

  private constructor(readonly file: string | undefined) {}

  static async open(file: string | undefined): Promise<Inventory> {
    const inventory = new Inventory(file);
    if (file) {
      await mkdir(dirname(file), { recursive: true });
      await inventory.#reload();
    }
    return inventory;
  }

  /** Reads the file again if someone else changed it since our last write. */
  async sync(): Promise<void> {
    if (!this.file || this.#dirty || this.#writing) return;
    const mtimeMs = await stat(this.file).then((s) => s.mtimeMs, () => 0);
    if (mtimeMs !== this.#mtimeMs) await this.#reload();
  }

  /** Resolves once a write that includes every change made before the call has reached the disk. */
  async persist(): Promise<void> {
    if (!this.file) return;
    this.#dirty = true;
    while (this.#dirty) {
      if (this.#writing) {
        await this.#writing;
        continue;
      }
      this.#dirty = false;
      this.#writing = this.#write(this.file).finally(() => (this.#writing = undefined));
      await this.#writing;
    }
  }

  /** Waits for a write in progress. */
  async settled(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async #reload(): Promise<void> {
    const file = this.file!;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const parsed = JSON.parse(text) as InventoryFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.instances)) throw new Error(`${file}: not a sim inventory (version 1)`);
    this.records.clear();
    for (const record of parsed.instances) this.records.set(record.id, record);
    this.#mtimeMs = (await stat(file)).mtimeMs;
  }

  async #write(file: string): Promise<void> {
    const body: InventoryFile = { version: 1, instances: [...this.records.values()] };
    const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(temp, JSON.stringify(body, null, 1));
    await rename(temp, file);
    this.#mtimeMs = (await stat(file)).mtimeMs;
  }
}
