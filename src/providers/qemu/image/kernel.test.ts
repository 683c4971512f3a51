import assert from "node:assert/strict";
import { bzImagePayload, hasPvhEntry, moduleIndex, moduleLoadOrder, modinfoDepends, moduleName, newestCloudKernel } from "./kernel.js";

describe("newestCloudKernel", () => {
  it("picks the highest concrete version and skips meta-packages", () => {
    const names = [
      "linux-image-6.1.0-47-cloud-amd64",
      "linux-image-6.1.0-56-cloud-amd64",
      "linux-image-6.12-cloud-amd64",
      "linux-image-6.12.100+deb12-cloud-amd64",
      "linux-image-6.12.117+deb12-cloud-amd64",
      "linux-image-6.12.99+deb12-cloud-amd64",
      "linux-image-6.12.117+deb12-cloud-amd64-dbg",
      "linux-image-6.12.118+deb12-amd64",
    ];
    assert.equal(newestCloudKernel(names), "linux-image-6.12.117+deb12-cloud-amd64");
    assert.equal(newestCloudKernel(["linux-image-6.1.0-9-cloud-amd64", "linux-image-6.1.0-10-cloud-amd64"]), "linux-image-6.1.0-10-cloud-amd64");
  });

  it("returns undefined when there is none", () => {
    assert.equal(newestCloudKernel(["linux-image-cloud-amd64", "busybox-static"]), undefined);
  });
});

describe("kernel modules", () => {
  it("names modules like the kernel does", () => {
    assert.equal(moduleName("kernel/drivers/net/virtio_net.ko.xz"), "virtio_net");
    assert.equal(moduleName("kernel/net/vmw_vsock/vmw-vsock.ko"), "vmw_vsock");
  });

  it("reads depends= from the .modinfo strings", () => {
    const module = Buffer.from("\x7fELF...\0license=GPL\0depends=net_failover,virtio-ring\0retpoline=Y\0");
    assert.deepEqual(modinfoDepends(module), ["net_failover", "virtio_ring"]);
    assert.deepEqual(modinfoDepends(Buffer.from("\0license=GPL\0depends=\0name=x\0")), []);
    assert.deepEqual(modinfoDepends(Buffer.from("no modinfo here")), []);
  });

  const index = moduleIndex(
    "kernel/drivers/virtio/virtio_mmio.ko\nkernel/drivers/net/virtio_net.ko\nkernel/drivers/net/net_failover.ko\nkernel/net/core/failover.ko\n",
    "kernel/drivers/char/virtio_console.ko\nkernel/drivers/virtio/virtio.ko\n",
  );
  const deps: Record<string, string[]> = { virtio_mmio: ["virtio"], virtio_net: ["net_failover"], net_failover: ["failover"], failover: [] };

  it("orders dependencies first and leaves built-in drivers out", async () => {
    const order = await moduleLoadOrder(["virtio_mmio", "virtio_console", "virtio_net"], index, async (name) => deps[name] ?? []);
    assert.deepEqual(order, ["virtio_mmio", "failover", "net_failover", "virtio_net"]);
  });

  it("names a driver the kernel lacks and who needed it", async () => {
    await assert.rejects(moduleLoadOrder(["virtio_net"], index, async (name) => (name === "failover" ? ["vsock"] : (deps[name] ?? []))), /no module or built-in driver "vsock" \(needed by failover\)/);
  });

  it("detects a dependency cycle", async () => {
    await assert.rejects(moduleLoadOrder(["failover"], index, async (name) => (name === "failover" ? ["net_failover"] : ["failover"])), /cycle: failover -> net_failover -> failover/);
  });
});

/** A minimal ELF64 with one PT_NOTE segment holding the given notes. */
function elfWithNotes(notes: { name: string; type: number; desc: Buffer }[]): Buffer {
  const noteBytes = Buffer.concat(
    notes.map(({ name, type, desc }) => {
      const nameBytes = Buffer.from(`${name}\0`);
      const header = Buffer.alloc(12);
      header.writeUInt32LE(nameBytes.length, 0);
      header.writeUInt32LE(desc.length, 4);
      header.writeUInt32LE(type, 8);
      const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
      return Buffer.concat([header, pad(nameBytes), pad(desc)]);
    }),
  );
  const elf = Buffer.alloc(64 + 56);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf[5] = 1;
  elf.writeBigUInt64LE(64n, 0x20);
  elf.writeUInt16LE(56, 0x36);
  elf.writeUInt16LE(1, 0x38);
  elf.writeUInt32LE(4, 64);
  elf.writeBigUInt64LE(BigInt(64 + 56), 64 + 8);
  elf.writeBigUInt64LE(BigInt(noteBytes.length), 64 + 32);
  return Buffer.concat([elf, noteBytes]);
}

describe("hasPvhEntry", () => {
  it("finds Xen's PHYS32_ENTRY note among others", () => {
    const entry = Buffer.alloc(4, 1);
    assert.equal(hasPvhEntry(elfWithNotes([{ name: "Linux", type: 6, desc: Buffer.from("6.12\0") }, { name: "Xen", type: 18, desc: entry }])), true);
  });

  it("is false without it, for 32-bit ELF and for non-ELF input", () => {
    assert.equal(hasPvhEntry(elfWithNotes([{ name: "Xen", type: 17, desc: Buffer.alloc(4) }, { name: "GNU", type: 18, desc: Buffer.alloc(4) }])), false);
    const elf32 = elfWithNotes([{ name: "Xen", type: 18, desc: Buffer.alloc(4) }]);
    elf32[4] = 1;
    assert.equal(hasPvhEntry(elf32), false);
    assert.equal(hasPvhEntry(Buffer.from("MZ not an elf at all, long enough to have a header".repeat(2))), false);
  });
});

describe("bzImagePayload", () => {
  /** A fake bzImage: setup header fields, then `payload` after (setup_sects + 1) sectors. */
  function bzImage(payload: Buffer, setupSectors = 2): Buffer {
    const image = Buffer.alloc((setupSectors + 1) * 512 + 16 + payload.length);
    image[0x1f1] = setupSectors;
    image.writeUInt32LE(0x53726448, 0x202);
    image.writeUInt32LE(16, 0x248);
    image.writeUInt32LE(payload.length, 0x24c);
    payload.copy(image, (setupSectors + 1) * 512 + 16);
    return image;
  }

  it("returns the compressed kernel and the size appended to it", () => {
    const compressed = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(123456);
    const payload = bzImagePayload(bzImage(Buffer.concat([compressed, size])));
    assert.equal(payload.format, "zstd");
    assert.deepEqual(payload.data, compressed);
    assert.equal(payload.size, 123456);
    assert.equal(bzImagePayload(bzImage(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0]))).format, "gzip");
  });

  it("rejects what it cannot read", () => {
    assert.throws(() => bzImagePayload(Buffer.alloc(1024)), /not a bzImage/);
    assert.throws(() => bzImagePayload(bzImage(Buffer.from("BZh91AY&SY....."))), /unknown bzImage payload compression/);
  });
});
