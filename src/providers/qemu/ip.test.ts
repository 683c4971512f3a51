import assert from "node:assert/strict";
import type { ProviderError } from "../types.js";
import { ipArgs, parseBridges, parseInterfaces, runIp } from "./ip.js";

describe("ip (iproute2) calls", () => {
  it("builds each call's arguments", () => {
    assert.deepEqual(ipArgs.interfaces(), ["-j", "addr", "show"]);
    assert.deepEqual(ipArgs.addBridge("ppvpc-abc123", 9000), ["link", "add", "name", "ppvpc-abc123", "mtu", "9000", "type", "bridge"]);
    assert.deepEqual(ipArgs.addAddress("ppvpc-abc123", "10.224.7.1/24"), ["addr", "add", "10.224.7.1/24", "dev", "ppvpc-abc123"]);
    assert.deepEqual(ipArgs.up("ppvpc-abc123", "06:01:02:03:04:05"), ["link", "set", "dev", "ppvpc-abc123", "address", "06:01:02:03:04:05", "up"]);
    assert.deepEqual(ipArgs.attach("ppvm-0123456789", "ppvpc-abc123", 9000), ["link", "set", "dev", "ppvm-0123456789", "mtu", "9000", "master", "ppvpc-abc123", "up"]);
    assert.deepEqual(ipArgs.remove("ppvpc-abc123"), ["link", "del", "dev", "ppvpc-abc123"]);
    assert.deepEqual(ipArgs.bridges(), ["-j", "link", "show", "type", "bridge"]);
    assert.deepEqual(ipArgs.label("ppvpc-abc123", "peerpods qemu VPC of /var/lib/p p"), ["link", "set", "dev", "ppvpc-abc123", "alias", "peerpods qemu VPC of /var/lib/p p"]);
  });

  it("reads interfaces, their bridge and IPv4 addresses from `ip -j addr show`", () => {
    const json = JSON.stringify([
      { ifindex: 1, ifname: "lo", mtu: 65536, addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }, { family: "inet6", local: "::1", prefixlen: 128 }] },
      { ifindex: 5, ifname: "ppvpc-abc123", mtu: 9000, addr_info: [{ family: "inet", local: "10.224.7.1", prefixlen: 24 }] },
      { ifindex: 6, ifname: "ppvm-0123456789", mtu: 9000, master: "ppvpc-abc123", addr_info: [] },
      { ifindex: 7, ifname: "dummy0", mtu: 1500 },
    ]);
    assert.deepEqual(parseInterfaces(json), [
      { name: "lo", mtu: 65536, ipv4: ["127.0.0.1/8"] },
      { name: "ppvpc-abc123", mtu: 9000, ipv4: ["10.224.7.1/24"] },
      { name: "ppvm-0123456789", mtu: 9000, master: "ppvpc-abc123", ipv4: [] },
      { name: "dummy0", mtu: 1500, ipv4: [] },
    ]);
  });

  it("reads bridges and their labels from `ip -j link show type bridge`", () => {
    const json = JSON.stringify([{ ifindex: 5, ifname: "ppvpc-abc123", ifalias: "peerpods qemu VPC of /s" }, { ifindex: 9, ifname: "docker0" }]);
    assert.deepEqual(parseBridges(json), [{ name: "ppvpc-abc123", label: "peerpods qemu VPC of /s" }, { name: "docker0" }]);
  });

  it("turns a failed call into a retryable ProviderError naming the call and what ip said", async () => {
    await assert.rejects(runIp(["link", "del", "dev", "ppvpc-nosuch"]), (error: ProviderError) => {
      assert.equal(error.kind, "retryable");
      assert.match(error.message, /^ip link del dev ppvpc-nosuch failed: \S/);
      return true;
    });
  });
});
