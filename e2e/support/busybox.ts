import { execFile } from "node:child_process";
import { mkdir, readdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A busybox root filesystem in `dir`: Debian's busybox-static, from the package `podvm:build`
 * fetched with apt-get download (kept in the image folder's debs/), and a bin/ symlink per applet.
 */
export async function busyboxRootfs(imageDir: string, dir: string): Promise<string> {
  const debs = join(imageDir, "debs");
  const deb = (await readdir(debs)).find((file) => file.startsWith("busybox-static_") && file.endsWith(".deb"));
  if (!deb) throw new Error(`no busybox-static package in ${debs}: run npm run podvm:build`);
  await mkdir(dir, { recursive: true });
  await run("dpkg", ["-x", join(debs, deb), dir]);
  const busybox = join(dir, "bin", "busybox");
  const applets = (await run(busybox, ["--list"])).stdout.split("\n").filter((a) => a && a !== "busybox" && /^[\w.[-]+$/.test(a));
  await Promise.all(applets.map((applet) => symlink("busybox", join(dir, "bin", applet))));
  return dir;
}
