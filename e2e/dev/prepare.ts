import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultImageDir, readManifest } from "../../src/providers/qemu/image/paths.js";
import { cniDir, CONTAINERD, containerdDir, kubeletDir, nodeImagesDir, RUNC, runcDir } from "../cluster/node/paths.js";
import { controlPlaneDir, KUBERNETES_VERSION, kwokDir, KWOK_VERSION } from "../cluster/paths.js";
import { formatBytes, type Detail } from "./progress.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const QEMU = "qemu-system-x86_64";
const INSTALL_SCRIPT = ".ci/install-system-packages.sh";

/** Runs a command from the repository, feeding each output line to `detail`; rejects with the output's tail on failure. */
export function runStreaming(command: string, args: string[], detail: Detail): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const onData = (chunk: Buffer): void => {
      tail = (tail + chunk.toString()).slice(-6000);
      const last = chunk.toString().trim().split("\n").pop();
      if (last) detail(last.trim());
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} exited ${code}:\n${tail}`))));
  });
}

const onPath = (command: string): boolean => spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;

/**
 * The Debian packages the demo needs (qemu, and what podvm:build uses): as root the CI script
 * installs whatever is missing (a no-op when nothing is); otherwise a missing qemu stops the run
 * with the one command to run.
 */
export async function ensureHostPackages(detail: Detail): Promise<string> {
  if (process.getuid?.() === 0) await runStreaming("bash", [INSTALL_SCRIPT], detail);
  if (!onPath(QEMU)) throw new Error(`${QEMU} is missing; install it with \`sudo bash ${INSTALL_SCRIPT}\` (Debian's qemu-system-x86), then run npm run dev again`);
  return `${QEMU} present`;
}

/** Total size of the regular files in a folder (not recursive). */
function folderBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .map((name) => statSync(join(dir, name)))
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + entry.size, 0);
}

/** Builds etcd, the Kubernetes control plane, KWOK and the real node from Go modules, or reuses them (cluster:build skips what is up to date). */
export async function buildControlPlane(detail: Detail): Promise<string> {
  await runStreaming(process.execPath, ["--import", "tsx", "e2e/cluster/build.ts"], detail);
  const node = [kubeletDir(), containerdDir(), runcDir(), cniDir(), nodeImagesDir()].reduce((sum, dir) => sum + folderBytes(dir), 0);
  return `Kubernetes ${KUBERNETES_VERSION} ${formatBytes(folderBytes(controlPlaneDir()))}, KWOK ${KWOK_VERSION} ${formatBytes(folderBytes(kwokDir()))}, real node (kubelet, containerd ${CONTAINERD.version}, runc ${RUNC.version}, CNI plugins, images) ${formatBytes(node)}`;
}

/** Builds the pod VM image (kernel + initramfs) from Debian packages, or reuses it. */
export async function buildPodVmImage(detail: Detail): Promise<string> {
  await runStreaming(process.execPath, ["--import", "tsx", "src/providers/qemu/image/build.ts"], detail);
  const dir = defaultImageDir();
  const manifest = await readManifest(dir);
  if (!manifest) throw new Error(`podvm:build left no image manifest in ${dir}`);
  const size = statSync(join(dir, manifest.kernel)).size + statSync(join(dir, manifest.initrd)).size;
  return `kernel ${manifest.kernelRelease} + initramfs, ${formatBytes(size)} in ${dir}`;
}
