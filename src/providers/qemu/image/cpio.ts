import { posix } from "node:path";

/** One member of an initramfs. Paths are relative to the archive root, without a leading slash. */
export type CpioEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; data: Uint8Array | string; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "char"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = "TRAILER!!!";

/**
 * A `newc` cpio archive as the kernel's initramfs unpacker reads it. Parent directories that are
 * not listed are added before their first child; timestamps and owners are zero, so the same
 * entries always give the same bytes.
 */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  let ino = 1;
  const written = new Set<string>();
  const add = (path: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0]): void => {
    chunks.push(member(path, mode, data, ino++, rdev));
    written.add(path);
  };
  for (const entry of entries) {
    const path = normalize(entry.path);
    for (const parent of parents(path)) if (!written.has(parent)) add(parent, S_IFDIR | 0o755, Buffer.alloc(0));
    if (written.has(path)) throw new Error(`duplicate cpio entry "${path}"`);
    switch (entry.type) {
      case "dir":
        add(path, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0));
        break;
      case "file":
        add(path, S_IFREG | (entry.mode ?? 0o644), Buffer.from(entry.data));
        break;
      case "symlink":
        add(path, S_IFLNK | 0o777, Buffer.from(entry.target));
        break;
      case "char":
        add(path, S_IFCHR | (entry.mode ?? 0o600), Buffer.alloc(0), [entry.major, entry.minor]);
        break;
    }
  }
  chunks.push(member(TRAILER, 0, Buffer.alloc(0), 0, [0, 0]));
  return Buffer.concat(chunks);
}

function normalize(path: string): string {
  const clean = posix.normalize(path).replace(/^\/+/, "").replace(/\/+$/, "");
  if (clean === "" || clean === "." || clean.startsWith("..")) throw new Error(`invalid cpio path "${path}"`);
  return clean;
}

function parents(path: string): string[] {
  const parts = path.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

function member(name: string, mode: number, data: Buffer, ino: number, [rdevMajor, rdevMinor]: [number, number]): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const isDir = (mode & 0o170000) === S_IFDIR;
  const fields = [ino, mode, 0, 0, isDir ? 2 : 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`, "ascii");
  return Buffer.concat([header, nameBytes, pad(header.length + nameBytes.length), data, pad(data.length)]);
}

/** Zero bytes that bring `length` up to the next multiple of 4. */
function pad(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}
