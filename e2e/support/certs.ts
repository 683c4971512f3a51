import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureAgentCa } from "../../src/certs/agent.js";
import { ensureCerts, type CertResult } from "../../src/certs/generate.js";
import { atExit } from "../cluster/process.js";

let certs: Promise<CertResult> | undefined;

/**
 * Serving certificates for the peerpods processes of this run (localhost, 127.0.0.1), made once per
 * run in a folder of its own, so runs side by side never read each other's half-written files.
 */
export function localCerts(): Promise<CertResult> {
  if (!certs) {
    const outDir = mkdtempSync(join(tmpdir(), "peerpods-e2e-certs-"));
    atExit(() => rmSync(outDir, { recursive: true, force: true }));
    certs = ensureCerts({ outDir, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 2, force: true });
  }
  return certs;
}

let agentCa: Promise<string> | undefined;

/** The agent channel's CA and node-side client certificate for this run (`peerpods agent-certs`), made once; resolves with its folder. */
export function localAgentCa(): Promise<string> {
  if (!agentCa) {
    const outDir = mkdtempSync(join(tmpdir(), "peerpods-e2e-agent-ca-"));
    atExit(() => rmSync(outDir, { recursive: true, force: true }));
    agentCa = ensureAgentCa({ outDir, validDays: 2, force: true }).then(() => outDir);
  }
  return agentCa;
}
