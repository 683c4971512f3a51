import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ociArchive, tar } from "./oci.js";

/** Unpacks a tar with GNU tar, the reader it must satisfy, and hands the folder to `check`. */
function unpacked(archive: Buffer, check: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "oci-test-"));
  try {
    writeFileSync(join(dir, "archive.tar"), archive);
    execFileSync("tar", ["-xf", "archive.tar", "--no-same-owner"], { cwd: dir });
    check(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

describe("tar", () => {
  it("writes files, folders and symlinks that GNU tar reads back with their modes", () => {
    const archive = tar([
      { type: "dir", path: "bin" },
      { type: "file", path: "bin/tool", data: Buffer.from("#!/bin/sh\necho hi\n"), mode: 0o755 },
      { type: "symlink", path: "bin/alias", target: "tool" },
      { type: "dir", path: "tmp", mode: 0o1777 },
    ]);
    assert.equal(archive.length % 512, 0);
    unpacked(archive, (dir) => {
      assert.equal(readFileSync(join(dir, "bin/tool"), "utf8"), "#!/bin/sh\necho hi\n");
      assert.equal(statSync(join(dir, "bin/tool")).mode & 0o777, 0o755);
      assert.equal(readlinkSync(join(dir, "bin/alias")), "tool");
      assert.ok(statSync(join(dir, "tmp")).isDirectory());
    });
  });

  it("gives the same bytes for the same entries, and refuses a path too long for its header", () => {
    const entries = [{ type: "file" as const, path: "a", data: Buffer.from("x") }];
    assert.deepEqual(tar(entries), tar(entries));
    assert.throws(() => tar([{ type: "dir", path: "d".repeat(120) }]), /does not fit in 100 bytes/);
  });
});

describe("ociArchive", () => {
  it("is an OCI layout whose index names the image and whose blobs match their digests", () => {
    const archive = ociArchive({ name: "example.local/tool:1", files: [{ type: "file", path: "tool", data: Buffer.from("binary"), mode: 0o755 }], config: { Entrypoint: ["/tool"] } });
    unpacked(archive, (dir) => {
      assert.deepEqual(JSON.parse(readFileSync(join(dir, "oci-layout"), "utf8")), { imageLayoutVersion: "1.0.0" });
      const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { manifests: { digest: string; size: number; annotations: Record<string, string> }[] };
      const [descriptor] = index.manifests;
      assert.equal(descriptor?.annotations["io.containerd.image.name"], "example.local/tool:1");
      assert.equal(descriptor?.annotations["org.opencontainers.image.ref.name"], "1");
      const blob = (digest: string): Buffer => {
        const data = readFileSync(join(dir, "blobs", "sha256", digest.slice("sha256:".length)));
        assert.equal(`sha256:${sha256(data)}`, digest, "a blob is stored under its digest");
        return data;
      };
      const manifest = JSON.parse(blob(descriptor!.digest).toString()) as { config: { digest: string }; layers: { digest: string; mediaType: string }[] };
      const config = JSON.parse(blob(manifest.config.digest).toString()) as { config: { Entrypoint: string[] }; rootfs: { diff_ids: string[] }; os: string; architecture: string };
      assert.deepEqual(config.config.Entrypoint, ["/tool"]);
      assert.equal(`${config.os}/${config.architecture}`, "linux/amd64");
      // an uncompressed layer: its digest is also its diff id
      assert.deepEqual(config.rootfs.diff_ids, [manifest.layers[0]!.digest]);
      unpacked(blob(manifest.layers[0]!.digest), (layer) => assert.equal(readFileSync(join(layer, "tool"), "utf8"), "binary"));
    });
  });
});
