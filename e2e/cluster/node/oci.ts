/**
 * OCI image archives written from a file list, for images made without a registry: a tar (ustar)
 * of an OCI image layout with one uncompressed layer, named by the `io.containerd.image.name`
 * annotation that `ctr images import` reads.
 */
import { createHash } from "node:crypto";

export type TarEntry =
  | { type: "file"; path: string; data: Buffer; mode?: number }
  | { type: "dir"; path: string; mode?: number }
  | { type: "symlink"; path: string; target: string };

const BLOCK = 512;
const TYPE_FLAG = { file: "0", symlink: "2", dir: "5" } as const;

/** A ustar archive of `entries`, in order, owned by root, dated 1970 (the same input gives the same bytes). */
export function tar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.type === "file" ? entry.data : Buffer.alloc(0);
    blocks.push(tarHeader(entry, data.length), data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  blocks.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(blocks);
}

function tarHeader(entry: TarEntry, size: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  const path = entry.type === "dir" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
  const field = (offset: number, length: number, text: string): void => {
    if (Buffer.byteLength(text) > length) throw new Error(`tar: "${text}" does not fit in ${length} bytes`);
    header.write(text, offset, length, "utf8");
  };
  const octal = (offset: number, length: number, value: number): void => field(offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
  const mode = entry.type === "symlink" ? 0o777 : (entry.mode ?? (entry.type === "dir" ? 0o755 : 0o644));
  field(0, 100, path);
  octal(100, 8, mode);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  field(156, 1, TYPE_FLAG[entry.type]);
  if (entry.type === "symlink") field(157, 100, entry.target);
  field(257, 6, "ustar\0");
  field(263, 2, "00");
  // the checksum is taken with its own field as spaces
  header.fill(" ", 148, 156);
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  field(148, 8, `${checksum.toString(8).padStart(6, "0")}\0 `);
  return header;
}

export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
}

export interface ImageSpec {
  /** Full reference, e.g. docker.io/library/busybox:latest. */
  name: string;
  /** The image's one layer: its file tree. */
  files: TarEntry[];
  config: ImageConfig;
}

const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;
const PLATFORM = { architecture: "amd64", os: "linux" } as const;

interface Blob {
  digest: string;
  size: number;
  data: Buffer;
}

const blob = (data: Buffer | string): Blob => {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  return { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, size: bytes.length, data: bytes };
};

/** An OCI image layout (oci-layout, index.json, blobs/sha256/…) of a single-layer linux/amd64 image, as a tar. */
export function ociArchive({ name, files, config }: ImageSpec): Buffer {
  const layer = blob(tar(files));
  const imageConfig = blob(
    JSON.stringify({ created: "1970-01-01T00:00:00Z", ...PLATFORM, config, rootfs: { type: "layers", diff_ids: [layer.digest] }, history: [{ created_by: "peerpods e2e/cluster/node" }] }),
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: { mediaType: MEDIA.config, digest: imageConfig.digest, size: imageConfig.size },
      layers: [{ mediaType: MEDIA.layer, digest: layer.digest, size: layer.size }],
    }),
  );
  const tag = name.slice(name.lastIndexOf(":") + 1);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest: manifest.digest,
        size: manifest.size,
        platform: PLATFORM,
        annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag },
      },
    ],
  };
  const blobFile = (b: Blob): TarEntry => ({ type: "file", path: `blobs/sha256/${b.digest.slice("sha256:".length)}`, data: b.data });
  return tar([
    { type: "file", path: "oci-layout", data: Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })) },
    { type: "file", path: "index.json", data: Buffer.from(JSON.stringify(index)) },
    { type: "dir", path: "blobs" },
    { type: "dir", path: "blobs/sha256" },
    ...[layer, imageConfig, manifest].map(blobFile),
  ]);
}
