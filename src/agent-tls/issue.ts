import { signedLeaf } from "../certs/generate.js";
import type { AgentTlsMaterial } from "./files.js";
import { agentIdentity } from "./identity.js";

/** What a VM boots with, by file name in its TLS folder (pkg/agenttls): only this VM's key, never the CA's. */
export interface VmTlsFiles {
  "tls.crt": string;
  "tls.key": string;
  "ca.crt": string;
}

const MAX_VM_CERT_MS = 365 * 24 * 3600 * 1000;

/** A serving certificate for the agent of the VM named `name`, signed by the material's signing CA. */
export async function issueVmCertificate(material: Pick<AgentTlsMaterial, "bundle" | "signer">, name: string): Promise<VmTlsFiles> {
  const notAfterDate = new Date(Math.min(material.signer.notAfter.getTime(), Date.now() + MAX_VM_CERT_MS));
  const signer = { private: material.signer.key, cert: material.signer.cert };
  const issued = await signedLeaf(name, signer, new Date(Date.now() - 60_000), notAfterDate, [
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: [{ type: 6 as const, value: agentIdentity(name) }] },
  ]);
  return { "tls.crt": issued.cert, "tls.key": issued.private, "ca.crt": material.bundle };
}
