import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { cacheDir } from "../cluster/paths.js";

const run = promisify(execFile);

/**
 * promtool from Debian's prometheus package, fetched with `apt-get download` and unpacked with
 * `dpkg -x` into the cache on first use: never installed, so no Prometheus service gets started.
 */
export async function promtoolBinary(): Promise<string> {
  const dir = join(cacheDir(), "promtool");
  const binary = join(dir, "promtool");
  if (existsSync(binary)) return binary;
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, ".download-"));
  try {
    await run("apt-get", ["download", "prometheus"], { cwd: work }).catch((error: Error & { stderr?: string }) => {
      throw new Error(`apt-get download prometheus failed (run apt-get update?): ${error.stderr?.trim() || error.message}`);
    });
    const deb = (await readdir(work)).find((file) => file.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download prometheus left no .deb");
    await run("dpkg", ["-x", deb, "root"], { cwd: work });
    await rename(join(work, "root", "usr", "bin", "promtool"), binary);
    return binary;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
