import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCerts, injectCaBundle, validateSans } from "./generate.js";

describe("certs", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "peerpods-certs-test-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("writes a CA and a serving certificate with the SANs, signed by the CA", async () => {
    const result = await ensureCerts({ outDir: dir, dnsNames: ["peerpods.peerpods-system.svc"], ipAddresses: ["127.0.0.1"], validDays: 30, force: false });
    assert.equal(result.reused, false);
    const cert = new X509Certificate(await readFile(result.files.cert));
    const ca = new X509Certificate(await readFile(result.files.ca));
    assert.ok(cert.verify(ca.publicKey));
    assert.ok(ca.ca);
    assert.match(cert.subjectAltName ?? "", /DNS:peerpods.peerpods-system.svc/);
    assert.match(cert.subjectAltName ?? "", /IP Address:127.0.0.1/);
    assert.equal(Buffer.from(result.caBundle, "base64").toString().trim(), ca.toString().trim());
  });

  it("reuses valid certificates, and regenerates with --force or new SANs", async () => {
    const request = { outDir: dir, dnsNames: ["a.example"], ipAddresses: [], validDays: 60, force: false };
    const first = await ensureCerts(request);
    const second = await ensureCerts(request);
    assert.equal(second.reused, true);
    assert.equal(second.caBundle, first.caBundle);
    assert.equal((await ensureCerts({ ...request, force: true })).reused, false);
    assert.equal((await ensureCerts({ ...request, dnsNames: ["b.example"] })).reused, false);
  });

  it("regenerates certificates that expire within 30 days", async () => {
    await ensureCerts({ outDir: dir, dnsNames: ["a.example"], ipAddresses: [], validDays: 10, force: false });
    assert.equal((await ensureCerts({ outDir: dir, dnsNames: ["a.example"], ipAddresses: [], validDays: 10, force: false })).reused, false);
  });

  it("validates SANs", () => {
    assert.match(validateSans([], ["300.1.1.1"]) ?? "", /not an IP address/);
    assert.match(validateSans(["bad name"], []) ?? "", /not a DNS name/);
    assert.match(validateSans([], []) ?? "", /at least one/);
    assert.equal(validateSans(["ok.example"], ["::1"]), undefined);
  });

  it("injects the CA bundle into caBundle fields", async () => {
    const file = join(dir, "webhook.yaml");
    await writeFile(file, "webhooks:\n  - clientConfig:\n      caBundle: OLD\n  - clientConfig:\n      caBundle: \"\"\n");
    assert.equal(await injectCaBundle(file, "NEW"), 2);
    assert.equal(await readFile(file, "utf8"), "webhooks:\n  - clientConfig:\n      caBundle: NEW\n  - clientConfig:\n      caBundle: NEW\n");
  });
});
