import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";

/** Bumped when the image layout or the guest's contract with the provider changes. */
export const PODVM_VERSION = "3";

export const cacheDir = (): string => process.env.PEERPODS_CACHE_DIR || join(homedir(), ".cache", "peerpods");
export const defaultImageDir = (): string => join(cacheDir(), `podvm-${PODVM_VERSION}`);

export const MANIFEST_FILE = "manifest.json";

/** What `podvm:build` made; the provider boots `kernel` with `initrd` (both relative to the image folder). */
export const manifestSchema = z.object({
  version: z.literal(PODVM_VERSION),
  kernel: z.string(),
  initrd: z.string(),
  kernelPackage: z.string(),
  kernelRelease: z.string(),
  busyboxPackage: z.string(),
  modules: z.array(z.string()),
  /** Hash of everything the image was built from: a rebuild with the same inputs is skipped. */
  inputs: z.string(),
  builtAt: z.string(),
});
export type ImageManifest = z.infer<typeof manifestSchema>;

export async function readManifest(imageDir: string): Promise<ImageManifest | undefined> {
  let text: string;
  try {
    text = await readFile(join(imageDir, MANIFEST_FILE), "utf8");
  } catch {
    return undefined;
  }
  try {
    const parsed = manifestSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
