import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProviderError } from "../../types.js";
import { ImageLoader } from "./load.js";
import { MANIFEST_FILE, PODVM_VERSION } from "./paths.js";

describe("ImageLoader", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "podvm-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("says how to build the image when there is none, and finds it once it is built", async () => {
    const loader = new ImageLoader(dir);
    await assert.rejects(loader.load(), (e) => e instanceof ProviderError && e.kind === "invalid" && /npm run podvm:build/.test(e.message));
    const manifest = { version: PODVM_VERSION, kernel: "vmlinuz", initrd: "initrd.img", kernelPackage: "k", kernelRelease: "r", busyboxPackage: "b", modules: [], inputs: "hash", builtAt: "now" };
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
    await writeFile(join(dir, "vmlinuz"), "kernel");
    await writeFile(join(dir, "initrd.img"), "initrd");
    const image = await loader.load();
    assert.equal(image.dir, dir, "the image a VM boots from is named by its folder");
    assert.equal(image.kernel, join(dir, "vmlinuz"));
    assert.equal(image.initrd.toString(), "initrd");
    assert.equal(image.inputs, "hash");
    assert.equal(await loader.load(), image);
  });
});
