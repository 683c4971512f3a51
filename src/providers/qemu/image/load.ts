import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ProviderError } from "../../types.js";
import { readManifest } from "./paths.js";

/** The built pod VM image, ready to boot. */
export interface PodVmImage {
  /** The image folder, which names the image a VM booted from. */
  dir: string;
  kernel: string;
  initrd: Buffer;
  /** Hash of what the image was built from: a rebuilt image gets a fresh probe. */
  inputs: string;
}

/** Loads the image in `imageDir` once; a failed load is tried again on the next call. */
export class ImageLoader {
  #image: Promise<PodVmImage> | undefined;

  constructor(readonly imageDir: string) {}

  load(): Promise<PodVmImage> {
    this.#image ??= this.#read();
    this.#image.catch(() => (this.#image = undefined));
    return this.#image;
  }

  async #read(): Promise<PodVmImage> {
    const manifest = await readManifest(this.imageDir);
    if (!manifest) throw new ProviderError("invalid", `no pod VM image in ${this.imageDir}: run npm run podvm:build`);
    const kernel = join(this.imageDir, manifest.kernel);
    await access(kernel, constants.R_OK);
    return { dir: this.imageDir, kernel, initrd: await readFile(join(this.imageDir, manifest.initrd)), inputs: manifest.inputs };
  }
}
