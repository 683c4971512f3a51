import { X509Certificate } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generate } from "selfsigned";
import { AGENT_TLS_FILES, readAgentTls } from "../agent-tls/files.js";
import { CA_EXTENSIONS, generateCa, signedLeaf, validity } from "./generate.js";

export interface AgentCaResult {
  reused: boolean;
  caNotAfter: Date;
  clientNotAfter: Date;
}

/** Material with less than this left is made again. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/**
 * The agent channel's CA and the node side's client certificate, in the files `AgentTlsStore`
 * reads (the keys of the Secret the worker and the node DaemonSet mount): reused while valid
 * (unless `force`), else made anew.
 */
export async function ensureAgentCa(request: { outDir: string; validDays: number; force: boolean }): Promise<AgentCaResult> {
  if (!request.force) {
    const existing = await readAgentTls(request.outDir).catch(() => undefined);
    const soonest = existing && Math.min(existing.signer.notAfter.getTime(), existing.client.notAfter.getTime());
    if (existing && soonest! - Date.now() > RENEW_BEFORE_MS) return { reused: true, caNotAfter: existing.signer.notAfter, clientNotAfter: existing.client.notAfter };
  }
  const { notBeforeDate, notAfterDate } = validity(request.validDays);
  const ca = await generateCa("peerpods-agent-ca", notBeforeDate, notAfterDate);
  const client = await clientCertificate(ca, notBeforeDate, notAfterDate);
  await writeFolder(request.outDir, { bundle: ca.cert, caKey: ca.private, cert: client.cert, key: client.private });
  return { reused: false, caNotAfter: notAfterDate, clientNotAfter: notAfterDate };
}

/**
 * Rolls the CA in one step that running VMs survive: a new CA joins the bundle and signs new VMs
 * and a new client certificate; the client certificate is sent with the new CA cross-signed by the
 * old one, so a VM that booted trusting only the old CA still accepts the node, and the node still
 * accepts that VM's old-CA certificate (the old CA stays in the bundle). `finishAgentCaRotation`
 * drops the old CA once every VM booted before is gone.
 */
export async function rotateAgentCa(request: { outDir: string; validDays: number }): Promise<AgentCaResult> {
  const current = await readAgentTls(request.outDir);
  const { notBeforeDate, notAfterDate } = validity(request.validDays);
  const ca = await generateCa("peerpods-agent-ca", notBeforeDate, notAfterDate);
  const subject = new X509Certificate(ca.cert).subject.replace(/^CN=/, "");
  const cross = await generate([{ name: "commonName", value: subject }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate: new Date(Math.min(notAfterDate.getTime(), current.signer.notAfter.getTime())),
    keyPair: { privateKey: ca.private, publicKey: ca.public },
    ca: { key: current.signer.key, cert: current.signer.cert },
    extensions: CA_EXTENSIONS,
  });
  const client = await clientCertificate(ca, notBeforeDate, notAfterDate);
  await writeFolder(request.outDir, { bundle: `${current.bundle.trimEnd()}\n${ca.cert}`, caKey: ca.private, cert: `${client.cert.trimEnd()}\n${cross.cert}`, key: client.private });
  return { reused: false, caNotAfter: notAfterDate, clientNotAfter: notAfterDate };
}

/** Ends a rotation: the bundle keeps only the signing CA and the client certificate goes without the cross-signed CA. */
export async function finishAgentCaRotation(outDir: string): Promise<void> {
  const current = await readAgentTls(outDir);
  const [leaf] = current.client.cert.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/) ?? [];
  await writeFolder(outDir, { bundle: current.signer.cert, caKey: current.signer.key, cert: `${leaf}\n`, key: current.client.key });
}

function clientCertificate(ca: { private: string; cert: string }, notBeforeDate: Date, notAfterDate: Date): ReturnType<typeof generate> {
  return signedLeaf("peerpods-node", ca, notBeforeDate, notAfterDate, [
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, critical: true },
    { name: "extKeyUsage", clientAuth: true },
  ]);
}

/** Writes the four files, the keys owner-only; each file is replaced whole (written aside, then renamed). */
async function writeFolder(outDir: string, files: Record<keyof typeof AGENT_TLS_FILES, string>): Promise<void> {
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  for (const [kind, data] of Object.entries(files) as [keyof typeof AGENT_TLS_FILES, string][]) {
    const path = join(outDir, AGENT_TLS_FILES[kind]);
    await writeFile(`${path}.new`, data, { mode: kind === "caKey" || kind === "key" ? 0o600 : 0o644 });
    await rename(`${path}.new`, path);
  }
}
