import { randomBytes, X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { generate } from "selfsigned";

export interface CertRequest {
  outDir: string;
  dnsNames: string[];
  ipAddresses: string[];
  validDays: number;
  force: boolean;
}

export interface CertResult {
  reused: boolean;
  caBundle: string;
  notAfter: Date;
  files: { ca: string; cert: string; key: string };
}

/** Reuse existing certificates that still have this long to live and cover the requested names. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

export const certFiles = (outDir: string) => ({ ca: join(outDir, "ca.crt"), cert: join(outDir, "tls.crt"), key: join(outDir, "tls.key") });

/** From a minute ago (clocks differ a little) for `days` days. */
export function validity(days: number): { notBeforeDate: Date; notAfterDate: Date } {
  return { notBeforeDate: new Date(Date.now() - 60_000), notAfterDate: new Date(Date.now() + days * 24 * 3600 * 1000) };
}

/** What makes a certificate a CA (self-signed, or cross-signed by another CA). */
export const CA_EXTENSIONS: NonNullable<NonNullable<Parameters<typeof generate>[1]>["extensions"]> = [
  { name: "basicConstraints", cA: true, critical: true },
  { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
];

/**
 * A self-signed CA named `prefix-<random>`: during a rotation clients trust the old and the new CA
 * at once, and OpenSSL picks the issuer by name, so two CAs named alike fail verification for one of them.
 */
type Extensions = NonNullable<NonNullable<Parameters<typeof generate>[1]>["extensions"]>;

/** A P-256 certificate for `commonName` signed by `ca`, valid between the dates, with `extensions`. */
export function signedLeaf(commonName: string, ca: { private: string; cert: string }, notBeforeDate: Date, notAfterDate: Date, extensions: Extensions): ReturnType<typeof generate> {
  return generate([{ name: "commonName", value: commonName }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions,
  });
}

export function generateCa(prefix: string, notBeforeDate: Date, notAfterDate: Date): ReturnType<typeof generate> {
  return generate([{ name: "commonName", value: `${prefix}-${randomBytes(6).toString("hex")}` }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    extensions: CA_EXTENSIONS,
  });
}

/** Generates a CA and a serving certificate signed by it, or reuses valid ones (unless `force`). */
export async function ensureCerts(request: CertRequest): Promise<CertResult> {
  const files = certFiles(request.outDir);
  if (!request.force) {
    const existing = await reusable(files, request);
    if (existing) return existing;
  }
  const { notBeforeDate, notAfterDate } = validity(request.validDays);
  const ca = await generateCa("peerpods-ca", notBeforeDate, notAfterDate);
  const serving = await signedLeaf(request.dnsNames[0] ?? request.ipAddresses[0] ?? "peerpods", ca, notBeforeDate, notAfterDate, [
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    {
      name: "subjectAltName",
      altNames: [...request.dnsNames.map((value) => ({ type: 2 as const, value })), ...request.ipAddresses.map((ip) => ({ type: 7 as const, ip }))],
    },
  ]);
  await mkdir(request.outDir, { recursive: true });
  await writeFile(files.ca, ca.cert, { mode: 0o644 });
  await writeFile(files.cert, serving.cert, { mode: 0o644 });
  await writeFile(files.key, serving.private, { mode: 0o600 });
  return { reused: false, caBundle: Buffer.from(ca.cert).toString("base64"), notAfter: notAfterDate, files };
}

async function reusable(files: ReturnType<typeof certFiles>, request: CertRequest): Promise<CertResult | undefined> {
  if (![files.ca, files.cert, files.key].every((f) => existsSync(f))) return undefined;
  const caPem = await readFile(files.ca, "utf8");
  const cert = new X509Certificate(await readFile(files.cert));
  const ca = new X509Certificate(caPem);
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() - Date.now() < RENEW_BEFORE_MS || !cert.verify(ca.publicKey)) return undefined;
  const wanted = [...request.dnsNames.map((d) => `DNS:${d}`), ...request.ipAddresses.map((ip) => `IP Address:${ip}`)];
  const present = new Set((cert.subjectAltName ?? "").split(", "));
  if (!wanted.every((name) => present.has(name))) return undefined;
  return { reused: true, caBundle: Buffer.from(caPem).toString("base64"), notAfter, files };
}

export function validateSans(dnsNames: string[], ipAddresses: string[]): string | undefined {
  const badIp = ipAddresses.find((ip) => isIP(ip) === 0);
  if (badIp) return `--ip ${badIp} is not an IP address`;
  const badDns = dnsNames.find((d) => !/^[a-z0-9*]([-a-z0-9.]*[a-z0-9])?$/i.test(d));
  if (badDns) return `--dns ${badDns} is not a DNS name`;
  if (dnsNames.length + ipAddresses.length === 0) return "give at least one --dns or --ip";
  return undefined;
}

/** Writes the CA bundle into every `caBundle:` field of a webhook/extender manifest. */
export async function injectCaBundle(manifestPath: string, caBundle: string): Promise<number> {
  const text = await readFile(manifestPath, "utf8");
  let count = 0;
  const updated = text.replace(/^(\s*caBundle:\s*).*$/gm, (_line, prefix: string) => {
    count += 1;
    return `${prefix}${caBundle}`;
  });
  await writeFile(manifestPath, updated);
  return count;
}
