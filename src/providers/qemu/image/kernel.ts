/** Pure helpers for picking the kernel package and the modules the pod VM needs. */

const CLOUD_KERNEL = /^linux-image-(\d+\.\d+\.\d+[-+][^\s]*)-cloud-amd64$/;

/**
 * The newest concrete Debian cloud kernel among package names (`linux-image-6.1.0-56-cloud-amd64`,
 * `linux-image-6.12.117+deb12-cloud-amd64`); meta-packages such as `linux-image-6.12-cloud-amd64`
 * are skipped. Versions compare number group by number group.
 */
export function newestCloudKernel(packageNames: readonly string[]): string | undefined {
  const candidates = packageNames.flatMap((name) => {
    const version = CLOUD_KERNEL.exec(name.trim())?.[1];
    return version ? [{ name: name.trim(), numbers: (version.match(/\d+/g) ?? []).map(Number) }] : [];
  });
  candidates.sort((a, b) => compareNumbers(b.numbers, a.numbers));
  return candidates[0]?.name;
}

function compareNumbers(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const diff = (a[i] ?? -1) - (b[i] ?? -1);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** `virtio_net` from `kernel/drivers/net/virtio_net.ko.xz` (the kernel treats '-' and '_' alike). */
export function moduleName(path: string): string {
  return (path.split("/").pop() ?? path).replace(/\.ko(\.xz|\.zst|\.gz)?$/, "").replaceAll("-", "_");
}

/** The `depends=` list of a module's `.modinfo` section (NUL-separated key=value strings). */
export function modinfoDepends(module: Uint8Array): string[] {
  const marker = Buffer.from("\0depends=");
  const bytes = Buffer.from(module.buffer, module.byteOffset, module.byteLength);
  const start = bytes.indexOf(marker);
  if (start < 0) return [];
  const valueStart = start + marker.length;
  const end = bytes.indexOf(0, valueStart);
  const value = bytes.toString("latin1", valueStart, end < 0 ? bytes.length : end);
  return value === "" ? [] : value.split(",").map(moduleName);
}

export interface ModuleIndex {
  /** Module name → path inside `lib/modules/<release>/` for loadable modules. */
  loadable: ReadonlyMap<string, string>;
  builtin: ReadonlySet<string>;
}

/** `modules.order` and `modules.builtin` (one `kernel/....ko` path a line) as a lookup. */
export function moduleIndex(modulesOrder: string, modulesBuiltin: string): ModuleIndex {
  const paths = (text: string): string[] => text.split("\n").map((l) => l.trim()).filter(Boolean);
  return {
    loadable: new Map(paths(modulesOrder).map((path) => [moduleName(path), path])),
    builtin: new Set(paths(modulesBuiltin).map(moduleName)),
  };
}

/**
 * The modules to put in the initramfs, dependencies before dependents, for `wanted` drivers that
 * the kernel does not have built in. `dependsOf` reads a module's own dependency list.
 */
export async function moduleLoadOrder(wanted: readonly string[], index: ModuleIndex, dependsOf: (name: string) => Promise<string[]>): Promise<string[]> {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = async (name: string, chain: string[]): Promise<void> => {
    if (index.builtin.has(name) || order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(" -> ")}`);
    if (!index.loadable.has(name)) throw new Error(`kernel has no module or built-in driver "${name}"${chain.length ? ` (needed by ${chain.at(-1)})` : ""}`);
    visiting.add(name);
    for (const dependency of await dependsOf(name)) await visit(dependency, [...chain, name]);
    visiting.delete(name);
    order.push(name);
  };
  for (const name of wanted) await visit(name, []);
  return order;
}

export type PayloadFormat = "zstd" | "gzip" | "xz";

const MAGIC: [PayloadFormat, number[]][] = [
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["gzip", [0x1f, 0x8b]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
];

/**
 * The compressed kernel inside a bzImage, located by the boot protocol's setup header
 * (`setup_sects` at 0x1f1, `payload_offset`/`payload_length` at 0x248), without the 4-byte
 * uncompressed size the kernel build appends to it.
 */
export function bzImagePayload(bzImage: Buffer): { format: PayloadFormat; data: Buffer; size: number } {
  if (bzImage.readUInt32LE(0x202) !== 0x53726448) throw new Error("not a bzImage: no HdrS signature");
  const setupSectors = bzImage[0x1f1] || 4;
  const start = (setupSectors + 1) * 512 + bzImage.readUInt32LE(0x248);
  const length = bzImage.readUInt32LE(0x24c);
  if (length < 8 || start + length > bzImage.length) throw new Error("bzImage payload lies outside the file");
  const payload = bzImage.subarray(start, start + length);
  const format = MAGIC.find(([, magic]) => magic.every((byte, i) => payload[i] === byte))?.[0];
  if (!format) throw new Error(`unknown bzImage payload compression (starts ${payload.subarray(0, 6).toString("hex")})`);
  return { format, data: payload.subarray(0, length - 4), size: payload.readUInt32LE(length - 4) };
}

const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** True for a 64-bit ELF kernel with a PVH entry point, which qemu boots directly, skipping decompression. */
export function hasPvhEntry(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  for (let i = 0; i < elf.readUInt16LE(0x38); i++) {
    const header = phoff + i * phentsize;
    if (elf.readUInt32LE(header) !== PT_NOTE) continue;
    const offset = Number(elf.readBigUInt64LE(header + 8));
    const end = offset + Number(elf.readBigUInt64LE(header + 32));
    for (let note = offset; note + 12 <= end; ) {
      const nameSize = elf.readUInt32LE(note);
      const descSize = elf.readUInt32LE(note + 4);
      const name = elf.toString("latin1", note + 12, note + 12 + nameSize).replace(/\0+$/, "");
      if (name === "Xen" && elf.readUInt32LE(note + 8) === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      note += 12 + align4(nameSize) + align4(descSize);
    }
  }
  return false;
}

const align4 = (n: number): number => Math.ceil(n / 4) * 4;
