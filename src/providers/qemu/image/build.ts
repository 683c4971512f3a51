/**
 * `npm run podvm:build`: the pod VM image — a Debian cloud kernel and an initramfs with
 * busybox, the virtio drivers the kernel lacks built in, the project's init, peerpods-agent and
 * runc — made from Debian packages (fetched with `apt-get download`, unpacked with `dpkg -x`, never
 * installed) and the Go binaries of `npm run runtime:build` (built first, if stale) into
 * `${PEERPODS_CACHE_DIR:-~/.cache/peerpods}/podvm-<version>/`. Skipped when nothing changed.
 */
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync, gzipSync } from "node:zlib";
import { buildRuntime, type RuntimeBinaries } from "../../../runtime/build.js";
import { writeCpio, type CpioEntry } from "./cpio.js";
import { bzImagePayload, hasPvhEntry, moduleIndex, moduleLoadOrder, modinfoDepends, newestCloudKernel } from "./kernel.js";
import { defaultImageDir, MANIFEST_FILE, PODVM_VERSION, readManifest, type ImageManifest } from "./paths.js";

const run = promisify(execFile);
const BUSYBOX_PACKAGE = "busybox-static";
/**
 * virtio-mmio transport (microvm), virtio-pci (q35 fallback), serial ports, network; overlay lets
 * runc seal its own binary for `runc init` with an overlayfs instead of copying it into a memfd
 * at every container start and exec; vxlan for the tunnels the agent makes to the node (pod network).
 */
const WANTED_MODULES = ["virtio_mmio", "virtio_pci", "virtio_console", "virtio_net", "overlay", "vxlan"];
const GUEST_DIR = new URL("../guest/", import.meta.url);
/** Files whose content goes into the image: any change rebuilds it. */
const SOURCES = ["../guest/init.sh", "./build.ts", "./cpio.ts", "./kernel.ts"].map((path) => new URL(path, import.meta.url));

let stepNumber = 0;
async function step<T>(title: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  process.stdout.write(`[podvm ${++stepNumber}/7] ${title} ... `);
  const result = await work();
  console.log(`done (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return result;
}

async function output(command: string, args: string[], cwd?: string): Promise<string> {
  try {
    return (await run(command, args, { cwd, maxBuffer: 256 * 1024 * 1024, encoding: "utf8" })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`${command} ${args.join(" ")} failed${stderr ? `: ${stderr}` : ""}`, { cause: error });
  }
}

async function candidateVersion(pkg: string): Promise<string> {
  const version = /^Version: (.+)$/m.exec(await output("apt-cache", ["show", "--no-all-versions", pkg]))?.[1];
  if (!version) throw new Error(`apt-cache knows no version of ${pkg}; run apt-get update`);
  return version;
}

async function resolvePackages(): Promise<Record<"kernel" | "busybox", { name: string; version: string }>> {
  const kernel = process.env.PEERPODS_PODVM_KERNEL_PACKAGE || newestCloudKernel((await output("apt-cache", ["pkgnames", "linux-image-"])).split("\n"));
  if (!kernel) throw new Error("apt-cache lists no linux-image-*-cloud-amd64 package; run apt-get update (Debian bookworm or later)");
  const [kernelVersion, busyboxVersion] = await Promise.all([candidateVersion(kernel), candidateVersion(BUSYBOX_PACKAGE)]);
  return { kernel: { name: kernel, version: kernelVersion }, busybox: { name: BUSYBOX_PACKAGE, version: busyboxVersion } };
}

/** Downloads (unless already there) and unpacks one package; returns the folder it was unpacked into. */
async function fetchAndUnpack(imageDir: string, pkg: { name: string; version: string }): Promise<string> {
  const debs = join(imageDir, "debs");
  await mkdir(debs, { recursive: true });
  const prefix = `${pkg.name}_${pkg.version.replace(":", "%3a")}_`;
  const find = async (): Promise<string | undefined> => (await readdir(debs)).find((f) => f.startsWith(prefix) && f.endsWith(".deb"));
  let deb = await find();
  if (!deb) {
    await output("apt-get", ["download", "-q", `${pkg.name}=${pkg.version}`], debs);
    deb = await find();
    if (!deb) throw new Error(`apt-get download ${pkg.name}=${pkg.version} left no ${prefix}*.deb in ${debs}`);
  }
  const root = join(imageDir, "unpacked", deb.replace(/\.deb$/, ""));
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  await output("dpkg", ["-x", join(debs, deb), root]);
  return root;
}

async function kernelModules(kernelRoot: string, busybox: string): Promise<{ release: string; modules: Map<string, Buffer> }> {
  const [release] = await readdir(join(kernelRoot, "lib", "modules"));
  if (!release) throw new Error(`no lib/modules in ${kernelRoot}`);
  const dir = join(kernelRoot, "lib", "modules", release);
  const index = moduleIndex(await readFile(join(dir, "modules.order"), "utf8"), await readFile(join(dir, "modules.builtin"), "utf8"));
  const contents = new Map<string, Buffer>();
  const load = async (name: string): Promise<Buffer> => {
    const path = join(dir, index.loadable.get(name) ?? "");
    // modules.order names `.ko`; Debian ships them xz-compressed from 6.12 on, and the unpacked
    // busybox decompresses them, so the guest needs no decompressor.
    const data = existsSync(path) ? await readFile(path) : (await run(busybox, ["xz", "-dc", `${path}.xz`], { encoding: "buffer", maxBuffer: 64 * 1024 * 1024 })).stdout;
    contents.set(name, data);
    return data;
  };
  const order = await moduleLoadOrder(WANTED_MODULES, index, async (name) => modinfoDepends(contents.get(name) ?? (await load(name))));
  return { release, modules: new Map(order.map((name) => [name, contents.get(name)!])) };
}

async function initramfs(busybox: string, modules: Map<string, Buffer>, runtime: RuntimeBinaries): Promise<Buffer> {
  const applets = (await output(busybox, ["--list"])).split("\n").filter((a) => a && a !== "busybox" && /^[\w.[-]+$/.test(a));
  const guestFile = (name: string): Promise<Buffer> => readFile(new URL(name, GUEST_DIR));
  const entries: CpioEntry[] = [
    { type: "file", path: "init", data: await guestFile("init.sh"), mode: 0o755 },
    { type: "file", path: "peerpods/agent", data: await readFile(runtime.agent), mode: 0o755 },
    { type: "file", path: "bin/runc", data: await readFile(runtime.runc), mode: 0o755 },
    { type: "file", path: "bin/busybox", data: await readFile(busybox), mode: 0o755 },
    ...applets.map((applet): CpioEntry => ({ type: "symlink", path: `bin/${applet}`, target: "busybox" })),
    ...[...modules].map(([name, data]): CpioEntry => ({ type: "file", path: `lib/modules/${name}.ko`, data })),
    { type: "file", path: "lib/modules/load-order", data: [...modules.keys()].map((name) => `${name}.ko\n`).join("") },
    { type: "char", path: "dev/console", major: 5, minor: 1 },
    { type: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 },
    ...["proc", "sys", "run", "tmp"].map((path): CpioEntry => ({ type: "dir", path })),
  ];
  return gzipSync(writeCpio(entries), { level: 9 });
}

/**
 * The kernel as an uncompressed ELF when it has a PVH entry point: qemu loads it directly and the
 * guest skips decompressing itself, which costs about a second under TCG. Undefined (boot the
 * bzImage) when that does not work out.
 */
function uncompressedKernel(bzImage: Buffer, busybox: string): { elf?: Buffer; reason: string } {
  const unpack = (command: string, args: string[], data: Buffer): Buffer => {
    const result = spawnSync(command, args, { input: data, maxBuffer: 512 * 1024 * 1024 });
    if (result.error || result.status !== 0) throw new Error(`${command} ${args.join(" ")}: ${result.error?.message ?? result.stderr.toString().trim()}`);
    return result.stdout;
  };
  try {
    const payload = bzImagePayload(bzImage);
    const elf =
      payload.format === "gzip"
        ? gunzipSync(payload.data)
        : payload.format === "xz"
          ? unpack(busybox, ["xz", "-dc"], payload.data)
          : unpack("zstd", ["-dc"], payload.data); // Debian package zstd; busybox has no zstd
    if (elf.length !== payload.size) return { reason: `${payload.format} payload unpacked to ${elf.length} bytes, expected ${payload.size}` };
    if (!hasPvhEntry(elf)) return { reason: "the kernel has no PVH entry point" };
    return { elf, reason: `uncompressed ${payload.format} kernel with a PVH entry` };
  } catch (error) {
    return { reason: (error as Error).message };
  }
}

async function inputsHash(packages: Awaited<ReturnType<typeof resolvePackages>>, runtime: RuntimeBinaries): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify({ PODVM_VERSION, packages, WANTED_MODULES, runtime: runtime.key }));
  for (const source of SOURCES) hash.update(await readFile(source));
  return hash.digest("hex").slice(0, 16);
}

/** Writes via a temporary name so a crash never leaves a half-written file under the real one. */
async function writeAtomically(path: string, data: Buffer | string): Promise<void> {
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}

async function buildImage(imageDir: string): Promise<ImageManifest> {
  const packages = await step("resolving Debian packages", resolvePackages);
  const runtime = await step("building peerpods-agent and runc (npm run runtime:build)", buildRuntime);
  const inputs = await inputsHash(packages, runtime);
  const existing = await readManifest(imageDir);
  if (existing?.inputs === inputs && existsSync(join(imageDir, existing.kernel)) && existsSync(join(imageDir, existing.initrd))) {
    console.log(`pod VM image up to date in ${imageDir} (${existing.kernelPackage})`);
    return existing;
  }
  await mkdir(imageDir, { recursive: true });
  const [kernelRoot, busyboxRoot] = await step(`fetching ${packages.kernel.name} ${packages.kernel.version} and ${packages.busybox.name} ${packages.busybox.version}`, async () => {
    const roots = await Promise.all([fetchAndUnpack(imageDir, packages.kernel), fetchAndUnpack(imageDir, packages.busybox)]);
    // Packages of earlier builds (a kernel is ~30 MB) are not needed again.
    const current = new Set(roots.map((root) => `${basename(root)}.deb`));
    const debs = join(imageDir, "debs");
    for (const deb of await readdir(debs)) if (!current.has(deb)) await rm(join(debs, deb), { force: true });
    return roots;
  });
  const busybox = join(busyboxRoot, "bin", "busybox");
  const { release, modules } = await step("resolving kernel modules", () => kernelModules(kernelRoot, busybox));
  const initrd = await step(`writing the initramfs (${modules.size} modules: ${[...modules.keys()].join(", ") || "none"})`, () => initramfs(busybox, modules, runtime));
  const kernel = await step("installing kernel and initramfs", async () => {
    const bzImage = await readFile(join(kernelRoot, "boot", `vmlinuz-${release}`));
    const { elf, reason } = uncompressedKernel(bzImage, busybox);
    process.stdout.write(`(${elf ? reason : `booting the bzImage: ${reason}`}) `);
    const [name, stale] = elf ? ["vmlinux", "vmlinuz"] : ["vmlinuz", "vmlinux"];
    await writeAtomically(join(imageDir, name), elf ?? bzImage);
    await rm(join(imageDir, stale), { force: true });
    await writeAtomically(join(imageDir, "initrd.gz"), initrd);
    return name;
  });
  const manifest: ImageManifest = {
    version: PODVM_VERSION,
    kernel,
    initrd: "initrd.gz",
    kernelPackage: `${packages.kernel.name}=${packages.kernel.version}`,
    kernelRelease: release,
    busyboxPackage: `${packages.busybox.name}=${packages.busybox.version}`,
    modules: [...modules.keys()],
    inputs,
    builtAt: new Date().toISOString(),
  };
  await step("writing the manifest", async () => {
    await writeAtomically(join(imageDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(join(imageDir, "unpacked"), { recursive: true, force: true });
  });
  console.log(`pod VM image ready in ${imageDir}: kernel ${release}, initramfs ${(initrd.length / 1024 / 1024).toFixed(1)} MiB`);
  return manifest;
}

buildImage(process.env.PEERPODS_PODVM_DIR || defaultImageDir()).catch((error: unknown) => {
  console.error(`\npodvm:build failed: ${(error as Error).message}`);
  process.exit(1);
});
