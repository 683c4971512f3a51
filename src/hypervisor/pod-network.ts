/**
 * The node side of a peer pod's network: `peerpods-podnet` (Go, netlink) puts a VXLAN device
 * towards the VM's private address into the pod's network namespace and mirrors the pod's
 * interface into it; the VM's agent then gives the pod's netns in the VM the same interface.
 */
import { execFile } from "node:child_process";
import { z } from "zod";

export const podNetworkSchema = z.object({
  interface: z.string().min(1),
  mac: z.string().min(1),
  mtu: z.number().int().positive(),
  addresses: z.array(z.string()).min(1),
  routes: z.array(z.object({ destination: z.string(), gateway: z.string().optional() })),
  vni: z.number().int().positive(),
  port: z.number().int().positive(),
  nodeIp: z.string().min(1),
  vmIp: z.string().min(1),
});

/** The pod's interface as CNI made it on the node, and the tunnel that carries it to the VM. */
export type PodNetwork = z.infer<typeof podNetworkSchema>;

export interface PodNetworker {
  /** Idempotent: a second call for the same sandbox answers the same network. */
  attach(netnsPath: string, sandboxId: string, vmIp: string): Promise<PodNetwork>;
  /** Removes the tunnel from the namespace; a namespace that is gone is already detached. */
  detach(netnsPath: string): Promise<void>;
}

const TIMEOUT_MS = 30_000;

/** `peerpods-podnet` at `binary` (a path, or a name on PATH). */
export function podnetCommand(binary: string): PodNetworker {
  const run = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(binary, args, { timeout: TIMEOUT_MS, encoding: "utf8" }, (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        const why = stderr.trim() || error.message;
        reject(new Error(`${binary} ${args[0]}: ${why}`));
      });
    });
  return {
    async attach(netnsPath, sandboxId, vmIp) {
      const stdout = await run(["attach", "--netns", netnsPath, "--sandbox", sandboxId, "--vm-ip", vmIp]);
      return parsePodNetwork(stdout);
    },
    async detach(netnsPath) {
      await run(["detach", "--netns", netnsPath]);
    },
  };
}

export function parsePodNetwork(stdout: string): PodNetwork {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new Error(`peerpods-podnet printed no JSON: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const parsed = podNetworkSchema.safeParse(json);
  if (!parsed.success) throw new Error(`peerpods-podnet printed an unexpected network: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`);
  return parsed.data;
}

/** The pod's first address without its prefix length, for messages. */
export function podIp(network: PodNetwork): string {
  return network.addresses[0]!.split("/")[0]!;
}
