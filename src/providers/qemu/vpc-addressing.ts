import { createHash } from "node:crypto";
import { ProviderError } from "../types.js";

/**
 * MTU of the bridge, the taps and the VMs' NICs: the pod network's VXLAN tunnels to the VMs carry
 * 1500-byte pod frames plus 50 bytes of VXLAN, UDP and IP headers, which a 1500 MTU would not fit.
 */
export const VPC_MTU = 9000;

/** Derived subnets are /24s inside 10.224.0.0/12. */
const RANGE_START = ipToNumber("10.224.0.0");
const RANGE_SUBNETS = 4096;
export const SUBNET_PREFIX = 24;
const SUBNET_SIZE = 2 ** (32 - SUBNET_PREFIX);
/** Linux interface names have at most 15 characters. */
const MAX_INTERFACE_NAME = 15;

export function ipToNumber(ip: string): number {
  const octets = ip.split(".").map(Number);
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) throw new Error(`${ip} is not an IPv4 address`);
  return octets.reduce((number, octet) => number * 256 + octet, 0);
}

export function numberToIp(number: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(number / 2 ** shift) % 256).join(".");
}

/** A /24 (`a.b.c.0/24`) as the number of its network address; throws for anything else. */
export function parseSubnet(cidr: string): number {
  const [ip, prefix] = cidr.split("/");
  const network = ipToNumber(ip ?? "");
  if (prefix !== String(SUBNET_PREFIX) || network % SUBNET_SIZE !== 0) throw new Error(`${cidr} is not a /24 such as 10.224.7.0/24`);
  return network;
}

export function isSubnet(cidr: string): boolean {
  try {
    parseSubnet(cidr);
    return true;
  } catch {
    return false;
  }
}

export const formatSubnet = (subnet: number): string => `${numberToIp(subnet)}/${SUBNET_PREFIX}`;
/** The bridge's address: the subnet's first. */
export const bridgeAddress = (subnet: number): string => `${numberToIp(subnet + 1)}/${SUBNET_PREFIX}`;
/** The /24 an address with its prefix (`10.224.7.1/24`) lies in. */
export const subnetOf = (cidr: string): number => Math.floor(ipToNumber(cidr.split("/")[0] ?? "") / SUBNET_SIZE) * SUBNET_SIZE;

/** The hash the provider's VPC names derive from: one per state folder. */
export const vpcHash = (stateDir: string): string => createHash("sha256").update(stateDir).digest("hex");

export const bridgeName = (stateDir: string): string => `ppvpc-${vpcHash(stateDir).slice(0, 6)}`;

/**
 * The bridge's own MAC (`06:` and five bytes of the hash; VMs' start with `02:`). A bridge without a
 * fixed MAC takes its lowest port's, so a tap joining would change it under the VMs that cached the
 * old one: their answers to the host would go nowhere until their ARP entry expires.
 */
export const bridgeMac = (stateDir: string): string => localMac("06", vpcHash(stateDir).slice(0, 10));

const BRIDGE_LABEL = "peerpods qemu VPC of ";
/** The bridge's label: the state folder whose VMs it carries. */
export const bridgeLabel = (stateDir: string): string => `${BRIDGE_LABEL}${stateDir}`;
/** The state folder a bridge label names; undefined for any other label. */
export const labelledStateDir = (label: string): string | undefined => (label.startsWith(BRIDGE_LABEL) ? label.slice(BRIDGE_LABEL.length) : undefined);

/** The tap qemu makes for VM `vmId` (`vm-0123456789` -> `ppvm-0123456789`). */
export function tapName(vmId: string): string {
  const name = `pp${vmId}`;
  if (name.length > MAX_INTERFACE_NAME) throw new Error(`tap name ${name} is longer than ${MAX_INTERFACE_NAME} characters`);
  return name;
}

/**
 * The MAC of VM `vmId`'s NIC (`vm-0123456789` -> `02:01:23:45:67:89`): locally administered and as
 * unique as the ids. qemu gives every VM the same one otherwise, which a shared bridge cannot tell apart.
 */
export function macAddress(vmId: string): string {
  const hex = /^vm-([0-9a-f]{10})$/.exec(vmId)?.[1];
  if (hex === undefined) throw new Error(`${vmId} is not a VM id`);
  return localMac("02", hex);
}

/** `first` and the 5 bytes of `hex` (10 hex digits) as a MAC. */
const localMac = (first: string, hex: string): string => [first, ...(hex.match(/../g) ?? [])].join(":");

/** Whether the /24 `subnet` shares an address with the network of `cidr` (`a.b.c.d/prefix`). */
function overlaps(subnet: number, cidr: string): boolean {
  const [ip, prefix] = cidr.split("/");
  const size = 2 ** (32 - Number(prefix));
  const start = Math.floor(ipToNumber(ip ?? "") / size) * size;
  return start < subnet + SUBNET_SIZE && subnet < start + size;
}

/**
 * The /24 derived from `hash`: the one it points at in 10.224.0.0/12, or the next one whose
 * addresses no network of `hostAddresses` (the host's IPv4 addresses with their prefixes) holds.
 */
export function derivedSubnet(hash: string, hostAddresses: string[]): number {
  const first = parseInt(hash.slice(0, 8), 16) % RANGE_SUBNETS;
  for (let step = 0; step < RANGE_SUBNETS; step++) {
    const subnet = RANGE_START + ((first + step) % RANGE_SUBNETS) * SUBNET_SIZE;
    if (!hostAddresses.some((cidr) => overlaps(subnet, cidr))) return subnet;
  }
  throw new ProviderError("invalid", "every /24 of 10.224.0.0/12 is in use on this host; set the qemu provider's vpcSubnet");
}

/** The lowest address of `subnet` after the bridge's that no VM in `taken` has. */
export function allocateIp(subnet: number, taken: Iterable<string>): string {
  const used = new Set(taken);
  for (let host = 2; host < SUBNET_SIZE - 1; host++) {
    const ip = numberToIp(subnet + host);
    if (!used.has(ip)) return ip;
  }
  throw new ProviderError("quota", `no free address left in the qemu VPC ${formatSubnet(subnet)}`);
}
