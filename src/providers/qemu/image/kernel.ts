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
