import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * The agent channel's folder (a Secret's keys): the trust bundle (one CA, or old and new during a
 * rotation), the key of the bundle's CA that signs VM certificates, and the node side's client
 * certificate and key. The Go side (pkg/agenttls) reads a VM's folder with the same file names.
 */
export const AGENT_TLS_FILES = { bundle: "ca.crt", caKey: "ca.key", cert: "tls.crt", key: "tls.key" } as const;

export interface AgentTlsMaterial {
  /** PEM, every CA VMs and the node trust. */
  bundle: string;
  /** The CA in the bundle that ca.key belongs to: it signs new VMs' certificates. */
  signer: { cert: string; key: string; notAfter: Date };
  client: { cert: string; key: string; notAfter: Date };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function bundleCertificates(bundle: string): X509Certificate[] {
  return (bundle.match(PEM_CERTIFICATE) ?? []).map((pem) => new X509Certificate(pem));
}

/** Reads and checks the folder: a key that does not match its certificate, or a client certificate no CA in the bundle signed, is an error. */
export async function readAgentTls(dir: string): Promise<AgentTlsMaterial> {
  const read = (name: string): Promise<string> => readFile(join(dir, name), "utf8");
  const [bundle, caKey, cert, key] = await Promise.all([read(AGENT_TLS_FILES.bundle), read(AGENT_TLS_FILES.caKey), read(AGENT_TLS_FILES.cert), read(AGENT_TLS_FILES.key)]);
  const cas = bundleCertificates(bundle);
  if (cas.length === 0) throw new Error(`${join(dir, AGENT_TLS_FILES.bundle)} holds no PEM certificate`);
  const caPublic = createPublicKey(createPrivateKey(caKey)).export({ type: "spki", format: "der" });
  const signer = cas.find((ca) => ca.publicKey.export({ type: "spki", format: "der" }).equals(caPublic));
  if (!signer) throw new Error(`${join(dir, AGENT_TLS_FILES.caKey)} is the key of no CA in ${AGENT_TLS_FILES.bundle}`);
  const client = new X509Certificate(cert);
  if (!client.checkPrivateKey(createPrivateKey(key))) throw new Error(`${join(dir, AGENT_TLS_FILES.key)} does not belong to ${AGENT_TLS_FILES.cert}`);
  if (!cas.some((ca) => client.checkIssued(ca) && client.verify(ca.publicKey))) throw new Error(`${join(dir, AGENT_TLS_FILES.cert)} was signed by no CA in ${AGENT_TLS_FILES.bundle}`);
  return {
    bundle,
    signer: { cert: signer.toString(), key: caKey, notAfter: new Date(signer.validTo) },
    client: { cert, key, notAfter: new Date(client.validTo) },
  };
}
