/**
 * The real node's images, made without a registry: `pause` (the project's static pause program) and
 * `busybox` (Debian's busybox-static with its applet links), written as OCI archives that the node
 * imports into containerd at start.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ociArchive, type TarEntry } from "./oci.js";
import { NODE_IMAGES } from "./paths.js";

const exec = promisify(execFile);
export const BUSYBOX_PACKAGE = "busybox-static";
const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The version apt would fetch, for the build's stamp; a clear error when the package lists lack it. */
export async function busyboxCandidate(): Promise<string> {
  const { stdout } = await exec("apt-cache", ["policy", BUSYBOX_PACKAGE]);
  const candidate = /Candidate:\s*(\S+)/.exec(stdout)?.[1];
  if (!candidate || candidate === "(none)") throw new Error(`apt knows no ${BUSYBOX_PACKAGE}; run apt-get update (bash .ci/install-system-packages.sh does)`);
  return candidate;
}

/** Debian's static busybox and its applet names, fetched with `apt-get download` and unpacked with `dpkg -x` (never installed). */
async function debianBusybox(version: string): Promise<{ binary: Buffer; applets: string[] }> {
  const work = await mkdtemp(join(tmpdir(), "peerpods-busybox-"));
  try {
    await exec("apt-get", ["download", "-q", `${BUSYBOX_PACKAGE}=${version}`], { cwd: work });
    const deb = (await readdir(work)).find((file) => file.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${BUSYBOX_PACKAGE}=${version} left no .deb`);
    await exec("dpkg", ["-x", deb, "root"], { cwd: work });
    const busybox = join(work, "root", "bin", "busybox");
    const applets = (await exec(busybox, ["--list"])).stdout.split("\n").filter((applet) => /^[\w.[-]+$/.test(applet));
    return { binary: await readFile(busybox), applets };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A minimal root: /bin/busybox, a link per applet, and the folders and files containers expect. */
export function busyboxTree(busybox: Buffer, applets: string[]): TarEntry[] {
  const dirs = ["bin", "dev", "etc", "proc", "root", "sys", "var"].map((path): TarEntry => ({ type: "dir", path }));
  return [
    ...dirs,
    { type: "dir", path: "tmp", mode: 0o1777 },
    { type: "file", path: "etc/passwd", data: Buffer.from("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n") },
    { type: "file", path: "etc/group", data: Buffer.from("root:x:0:\nnogroup:x:65534:\n") },
    { type: "file", path: "bin/busybox", data: busybox, mode: 0o755 },
    ...applets.filter((applet) => applet !== "busybox").map((applet): TarEntry => ({ type: "symlink", path: `bin/${applet}`, target: "busybox" })),
  ];
}

export async function writeBusyboxImage(version: string, output: string): Promise<void> {
  const { binary, applets } = await debianBusybox(version);
  await writeFile(output, ociArchive({ name: NODE_IMAGES.busybox.name, files: busyboxTree(binary, applets), config: { Cmd: ["sh"], Env: [PATH_ENV] } }));
}

export async function writePauseImage(pauseBinary: string, output: string): Promise<void> {
  const files: TarEntry[] = [{ type: "file", path: "pause", data: await readFile(pauseBinary), mode: 0o755 }];
  await writeFile(output, ociArchive({ name: NODE_IMAGES.pause.name, files, config: { Entrypoint: ["/pause"] } }));
}
