import assert from "node:assert/strict";
import type { ProviderError } from "../types.js";
import type { HostInterface } from "./ip.js";
import { LocalVpc } from "./vpc.js";
import { bridgeMac, bridgeName, derivedSubnet, formatSubnet, parseSubnet, vpcHash } from "./vpc-addressing.js";

const STATE_DIR = "/var/lib/peerpods";
const BRIDGE = bridgeName(STATE_DIR);
const UP = `link set dev ${BRIDGE} address ${bridgeMac(STATE_DIR)} up`;

/** An `ip` that answers listings from `interfaces` and records every other call. */
function fakeIp(interfaces: HostInterface[]): { calls: string[]; run: (args: string[]) => Promise<string> } {
  const calls: string[] = [];
  const run = (args: string[]): Promise<string> => {
    if (args[0] === "-j") return Promise.resolve(JSON.stringify(interfaces.map((entry) => ({ ifname: entry.name, mtu: entry.mtu, addr_info: entry.ipv4.map((cidr) => ({ family: "inet", local: cidr.split("/")[0], prefixlen: Number(cidr.split("/")[1]) })) }))));
    calls.push(args.join(" "));
    return Promise.resolve("");
  };
  return { calls, run };
}

/** An `ip` that lists no interfaces and fails every change. */
const fakeFailing = (args: string[]): Promise<string> => (args[0] === "-j" ? Promise.resolve("[]") : Promise.reject(new Error("RTNETLINK answers: Operation not permitted")));

describe("the qemu provider's VPC bridge", () => {
  it("makes the bridge with MTU 9000 and the first address of the derived subnet, skipping the host's networks", async () => {
    const hostAddresses = ["192.0.2.2/24", `${formatSubnet(derivedSubnet(vpcHash(STATE_DIR), [])).replace(".0/24", ".9/24")}`];
    const ip = fakeIp([{ name: "eth0", mtu: 1500, ipv4: hostAddresses }]);
    const { subnet, created } = await new LocalVpc(STATE_DIR, undefined, ip.run).ensure();
    assert.equal(created, true);
    assert.equal(subnet, derivedSubnet(vpcHash(STATE_DIR), hostAddresses));
    assert.notEqual(subnet, derivedSubnet(vpcHash(STATE_DIR), []), "the host's own /24 is skipped");
    const gateway = formatSubnet(subnet).replace(".0/24", ".1/24");
    assert.deepEqual(ip.calls, [`link add name ${BRIDGE} mtu 9000 type bridge`, `link set dev ${BRIDGE} alias peerpods qemu VPC of ${STATE_DIR}`, `addr add ${gateway} dev ${BRIDGE}`, UP]);
  });

  it("keeps an existing bridge and its subnet (its VMs have addresses in it), fixing its MAC", async () => {
    const ip = fakeIp([{ name: BRIDGE, mtu: 9000, ipv4: ["10.230.1.1/24"] }]);
    const { subnet, created } = await new LocalVpc(STATE_DIR, undefined, ip.run).ensure();
    assert.deepEqual([formatSubnet(subnet), created], ["10.230.1.0/24", false]);
    assert.deepEqual(ip.calls, [UP]);
  });

  it("gives a bridge a crash left without its address the address, and uses a fixed subnet", async () => {
    const ip = fakeIp([{ name: BRIDGE, mtu: 9000, ipv4: [] }]);
    const { subnet } = await new LocalVpc(STATE_DIR, parseSubnet("192.168.77.0/24"), ip.run).ensure();
    assert.equal(formatSubnet(subnet), "192.168.77.0/24");
    assert.deepEqual(ip.calls, [`addr add 192.168.77.1/24 dev ${BRIDGE}`, UP]);
  });

  it("uses the bridge another provider object on the same state folder made at the same moment", async () => {
    const calls: string[] = [];
    let listings = 0;
    const racing = (args: string[]): Promise<string> => {
      if (args[0] === "-j") {
        const madeMeanwhile = listings++ > 0 ? [{ ifname: BRIDGE, mtu: 9000, addr_info: [{ family: "inet", local: "10.230.1.1", prefixlen: 24 }] }] : [];
        return Promise.resolve(JSON.stringify(madeMeanwhile));
      }
      calls.push(args.join(" "));
      return args[1] === "add" ? Promise.reject(new Error("RTNETLINK answers: File exists")) : Promise.resolve("");
    };
    const { subnet, created } = await new LocalVpc(STATE_DIR, undefined, racing).ensure();
    assert.deepEqual([formatSubnet(subnet), created], ["10.230.1.0/24", false]);
    assert.deepEqual(calls, [`link add name ${BRIDGE} mtu 9000 type bridge`, UP]);
    await assert.rejects(new LocalVpc(STATE_DIR, undefined, fakeFailing).ensure(), /Operation not permitted/);
  });

  it("refuses a fixed subnet other than the one the existing bridge has", async () => {
    const ip = fakeIp([{ name: BRIDGE, mtu: 9000, ipv4: ["10.230.1.1/24"] }]);
    await assert.rejects(new LocalVpc(STATE_DIR, parseSubnet("10.230.2.0/24"), ip.run).ensure(), (error: ProviderError) => error.kind === "invalid" && /10\.230\.1\.0\/24/.test(error.message));
  });

  it("attaches taps with the bridge's MTU and removes the bridge only when it exists", async () => {
    const present = fakeIp([{ name: BRIDGE, mtu: 9000, ipv4: [] }]);
    const vpc = new LocalVpc(STATE_DIR, undefined, present.run);
    await vpc.attach("ppvm-0123456789");
    assert.equal(await vpc.remove(), true);
    assert.deepEqual(present.calls, [`link set dev ppvm-0123456789 mtu 9000 master ${BRIDGE} up`, `link del dev ${BRIDGE}`]);
    const absent = fakeIp([]);
    assert.equal(await new LocalVpc(STATE_DIR, undefined, absent.run).remove(), false);
    assert.deepEqual(absent.calls, []);
  });
});
