import { ProviderError } from "../types.js";
import { hostInterfaces, ipArgs, runIp, type IpRunner } from "./ip.js";
import { bridgeAddress, bridgeLabel, bridgeMac, bridgeName, derivedSubnet, formatSubnet, subnetOf, vpcHash, VPC_MTU } from "./vpc-addressing.js";

/**
 * The qemu provider's VPC: a Linux bridge of its own, holding the first address of a /24; each VM's
 * tap is a port of it and the VM has an address of the subnet. The bridge lives as long as VMs do,
 * across restarts of the provider.
 */
export class LocalVpc {
  readonly bridge: string;
  readonly #mac: string;
  readonly #hash: string;
  readonly #label: string;

  /** `subnet`: a fixed /24 (network address as a number); else derived from the state folder. */
  constructor(
    stateDir: string,
    private readonly subnet: number | undefined,
    private readonly ip: IpRunner = runIp,
  ) {
    this.bridge = bridgeName(stateDir);
    this.#mac = bridgeMac(stateDir);
    this.#hash = vpcHash(stateDir);
    this.#label = bridgeLabel(stateDir);
  }

  /**
   * The bridge's subnet, making the bridge first when there is none (`created`). An existing bridge
   * keeps its subnet: its VMs have addresses in it.
   */
  async ensure(): Promise<{ subnet: number; created: boolean }> {
    const interfaces = await hostInterfaces(this.ip);
    const own = interfaces.find((entry) => entry.name === this.bridge);
    if (own?.ipv4[0] !== undefined) return { subnet: await this.#useExisting(own.ipv4[0]), created: false };
    const others = interfaces.filter((entry) => entry.name !== this.bridge).flatMap((entry) => entry.ipv4);
    const subnet = this.subnet ?? derivedSubnet(this.#hash, others);
    try {
      // A bridge without an address is what a crash between these steps left.
      if (!own) {
        await this.ip(ipArgs.addBridge(this.bridge, VPC_MTU));
        await this.ip(ipArgs.label(this.bridge, this.#label));
      }
      await this.ip(ipArgs.addAddress(this.bridge, bridgeAddress(subnet)));
    } catch (error) {
      // Another provider object on the same state folder may have made it at the same moment.
      const address = (await hostInterfaces(this.ip)).find((entry) => entry.name === this.bridge)?.ipv4[0];
      if (address === undefined) throw error;
      return { subnet: await this.#useExisting(address), created: false };
    }
    await this.ip(ipArgs.up(this.bridge, this.#mac));
    return { subnet, created: true };
  }

  /**
   * The subnet of the bridge that has `address`, brought up; a fixed subnet must be that one. A bridge
   * made before its MAC was fixed gets it here, once.
   */
  async #useExisting(address: string): Promise<number> {
    const subnet = subnetOf(address);
    if (this.subnet !== undefined && subnet !== this.subnet) {
      throw new ProviderError("invalid", `bridge ${this.bridge} has ${formatSubnet(subnet)} while vpcSubnet asks for ${formatSubnet(this.subnet)}; it changes once no VM of this provider runs and the provider has closed`);
    }
    await this.ip(ipArgs.up(this.bridge, this.#mac));
    return subnet;
  }

  /** Puts a VM's tap on the bridge. */
  async attach(tap: string): Promise<void> {
    await this.ip(ipArgs.attach(tap, this.bridge, VPC_MTU));
  }

  /** Removes the bridge if it exists; true when it did. */
  async remove(): Promise<boolean> {
    if (!(await hostInterfaces(this.ip)).some((entry) => entry.name === this.bridge)) return false;
    await this.ip(ipArgs.remove(this.bridge));
    return true;
  }
}
