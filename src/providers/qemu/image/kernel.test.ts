import assert from "node:assert/strict";
import { moduleIndex, moduleLoadOrder, modinfoDepends, moduleName, newestCloudKernel } from "./kernel.js";

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
