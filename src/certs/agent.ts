import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generate } from "selfsigned";
import { AGENT_TLS_FILES, readAgentTls } from "../agent-tls/files.js";
import { generateCa, validity } from "./generate.js";

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
  const client = await generate([{ name: "commonName", value: "peerpods-node" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", clientAuth: true },
    ],
  });
  await mkdir(request.outDir, { recursive: true, mode: 0o700 });
  const write = (name: string, data: string, mode: number): Promise<void> => writeFile(join(request.outDir, name), data, { mode });
  await write(AGENT_TLS_FILES.bundle, ca.cert, 0o644);
  await write(AGENT_TLS_FILES.caKey, ca.private, 0o600);
  await write(AGENT_TLS_FILES.cert, client.cert, 0o644);
  await write(AGENT_TLS_FILES.key, client.private, 0o600);
  return { reused: false, caNotAfter: notAfterDate, clientNotAfter: notAfterDate };
}
