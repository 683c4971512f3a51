import assert from "node:assert/strict";
import type { ProviderError } from "../types.js";
import { allocateIp, bridgeAddress, bridgeLabel, bridgeMac, bridgeName, labelledStateDir, macAddress, derivedSubnet, formatSubnet, ipToNumber, isSubnet, numberToIp, parseSubnet, subnetOf, tapName, vpcHash } from "./vpc-addressing.js";

describe("qemu VPC addressing", () => {
  it("converts IPv4 addresses to numbers and back", () => {
    assert.equal(ipToNumber("10.224.7.2"), 0x0ae00702);
    assert.equal(numberToIp(0xffffffff), "255.255.255.255");
    assert.equal(numberToIp(ipToNumber("10.239.255.254")), "10.239.255.254");
    assert.throws(() => ipToNumber("10.224.7"), /not an IPv4 address/);
    assert.throws(() => ipToNumber("10.224.7.256"), /not an IPv4 address/);
  });

  it("takes /24 subnets only", () => {
    assert.equal(formatSubnet(parseSubnet("10.224.7.0/24")), "10.224.7.0/24");
    assert.equal(bridgeAddress(parseSubnet("10.224.7.0/24")), "10.224.7.1/24");
    assert.equal(formatSubnet(subnetOf("10.224.7.1/24")), "10.224.7.0/24");
    for (const bad of ["10.224.7.1/24", "10.224.0.0/16", "10.224.7.0", "300.1.1.0/24", "nonsense"]) assert.equal(isSubnet(bad), false, bad);
    assert.equal(isSubnet("192.168.50.0/24"), true);
  });

  it("names the bridge after the state folder and the tap after the VM, both within 15 characters", () => {
    assert.match(bridgeName("/var/lib/peerpods"), /^ppvpc-[0-9a-f]{6}$/);
    assert.equal(bridgeName("/var/lib/peerpods"), bridgeName("/var/lib/peerpods"));
    assert.notEqual(bridgeName("/var/lib/peerpods"), bridgeName("/var/lib/peerpods-2"));
    assert.equal(tapName("vm-0123456789"), "ppvm-0123456789");
    assert.equal(labelledStateDir(bridgeLabel("/var/lib/peerpods")), "/var/lib/peerpods");
    assert.equal(labelledStateDir("docker bridge"), undefined);
  });

  it("gives each VM a locally administered unicast MAC from its id", () => {
    assert.equal(macAddress("vm-0123456789"), "02:01:23:45:67:89");
    assert.notEqual(macAddress("vm-0123456789"), macAddress("vm-0123456788"));
    assert.throws(() => macAddress("probe-tcg-microvm"), /not a VM id/);
    assert.throws(() => tapName("vm-0123456789abc"), /longer than 15/);
  });

  it("gives the bridge a locally administered unicast MAC of its own, from the state folder and unlike any VM's", () => {
    const mac = bridgeMac("/var/lib/peerpods");
    assert.equal(mac, `06:${vpcHash("/var/lib/peerpods").slice(0, 10).match(/../g)!.join(":")}`);
    assert.equal((parseInt(mac.slice(0, 2), 16) & 0b11).toString(2), "10", "locally administered, not multicast");
    assert.notEqual(mac, bridgeMac("/var/lib/peerpods-2"));
    assert.notEqual(mac.slice(0, 3), macAddress("vm-0123456789").slice(0, 3));
  });

  it("derives the subnet from the hash inside 10.224.0.0/12, the same for the same state folder", () => {
    const hash = vpcHash("/var/lib/peerpods");
    const subnet = derivedSubnet(hash, []);
    assert.equal(subnet, derivedSubnet(hash, ["192.0.2.2/24"]));
    assert.ok(subnet >= ipToNumber("10.224.0.0") && subnet <= ipToNumber("10.239.255.0"), formatSubnet(subnet));
    assert.equal(formatSubnet(derivedSubnet("00000000", [])), "10.224.0.0/24");
    assert.equal(formatSubnet(derivedSubnet("00000fff", [])), "10.239.255.0/24");
  });

  it("skips a /24 any interface of the host has an address in, wrapping around at the end of the range", () => {
    assert.equal(formatSubnet(derivedSubnet("00000000", ["10.224.0.5/24"])), "10.224.1.0/24");
    assert.equal(formatSubnet(derivedSubnet("00000000", ["10.224.0.5/23"])), "10.224.2.0/24", "a wider network covers several /24s");
    assert.equal(formatSubnet(derivedSubnet("00000fff", ["10.239.255.1/24"])), "10.224.0.0/24");
    assert.equal(formatSubnet(derivedSubnet("00000000", ["10.224.0.1/32", "10.224.1.1/28"])), "10.224.2.0/24");
    assert.throws(() => derivedSubnet("00000000", ["10.0.0.1/8"]), (error: ProviderError) => error.kind === "invalid" && /vpcSubnet/.test(error.message));
  });

  it("gives a VM the lowest address after the bridge's that no live VM has", () => {
    const subnet = parseSubnet("10.224.7.0/24");
    assert.equal(allocateIp(subnet, []), "10.224.7.2");
    assert.equal(allocateIp(subnet, ["10.224.7.2", "10.224.7.4"]), "10.224.7.3");
    const full = Array.from({ length: 253 }, (_, i) => `10.224.7.${i + 2}`);
    assert.throws(() => allocateIp(subnet, full), (error: ProviderError) => error.kind === "quota" && /10\.224\.7\.0\/24/.test(error.message));
    assert.equal(allocateIp(subnet, full.slice(1)), "10.224.7.2");
  });
});
