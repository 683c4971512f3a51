import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { ConnectionOptions } from "node:tls";
import type { Logger } from "../log/logger.js";
import { agentTlsExpiry } from "../metrics/agent-tls.js";
import { AGENT_TLS_FILES, readAgentTls, type AgentTlsMaterial } from "./files.js";
import { agentIdentity, certificateNames } from "./identity.js";
import { issueVmCertificate, type VmTlsFiles } from "./issue.js";

/** Mutual TLS on the agent channel, as the node side (hypervisor part, worker) speaks it. */
export interface AgentTls {
  /** Options of a TLS 1.3 connection that only the agent of the VM named `name` completes, with the node's client certificate. */
  clientFor(name: string): Promise<ConnectionOptions>;
  /** The TLS folder a new VM named `name` boots with. */
  issueFor(name: string): Promise<VmTlsFiles>;
}

/** TLS options for reaching the agent `identity` names, given the node side's material. */
export function clientOptions(material: Pick<AgentTlsMaterial, "bundle" | "client">, name: string): ConnectionOptions {
  const identity = agentIdentity(name);
  return {
    minVersion: "TLSv1.3",
    ca: material.bundle,
    cert: material.client.cert,
    key: material.client.key,
    // A VM is known by its instance name, not by the address it is reached at.
    checkServerIdentity: (_host, cert) => (certificateNames(cert.subjectaltname, identity) ? undefined : new Error(`the agent's certificate is not for VM ${name} (it names ${cert.subjectaltname ?? "nothing"})`)),
  };
}

/**
 * The agent channel's folder (a mounted Secret), read again whenever one of its files changes, so
 * a rotation reaches new connections and new VMs without a restart. A change that does not load
 * keeps the previous material and is logged.
 */
export class AgentTlsStore implements AgentTls {
  #loaded: { signature: string; material: AgentTlsMaterial } | undefined;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  async clientFor(name: string): Promise<ConnectionOptions> {
    return clientOptions(await this.current(), name);
  }

  async issueFor(name: string): Promise<VmTlsFiles> {
    return issueVmCertificate(await this.current(), name);
  }

  async current(): Promise<AgentTlsMaterial> {
    const signature = await this.#signature();
    if (this.#loaded?.signature === signature) return this.#loaded.material;
    try {
      const material = await readAgentTls(this.dir);
      this.#loaded = { signature, material };
      agentTlsExpiry.set({ kind: "ca" }, material.signer.notAfter.getTime() / 1000);
      agentTlsExpiry.set({ kind: "client" }, material.client.notAfter.getTime() / 1000);
      this.log.info({ dir: this.dir, caNotAfter: material.signer.notAfter, clientNotAfter: material.client.notAfter }, "agent channel certificates loaded");
      return material;
    } catch (error) {
      if (!this.#loaded) throw new Error(`agent channel certificates in ${this.dir}: ${(error as Error).message}`, { cause: error });
      this.log.warn({ err: error, dir: this.dir }, "agent channel certificates changed but do not load; keeping the previous ones");
      this.#loaded.signature = signature;
      return this.#loaded.material;
    }
  }

  /** Changes when any file is replaced (a Secret volume swaps a symlink) or rewritten. */
  async #signature(): Promise<string> {
    const stats = await Promise.all(Object.values(AGENT_TLS_FILES).map((file) => stat(join(this.dir, file)).then((s) => `${s.ino}:${s.mtimeMs}:${s.size}`, () => "-")));
    return stats.join("|");
  }
}
