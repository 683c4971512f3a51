import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureAgentCa } from "../certs/agent.js";
import { silentLogger } from "../log/logger.js";
import { AGENT_TLS_FILES } from "./files.js";
import { AgentTlsStore } from "./store.js";

describe("the agent channel's certificates", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "peerpods-agent-tls-test-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("issues each VM a serving certificate bound to its instance name, signed by the agent CA, and no CA key", async () => {
    await ensureAgentCa({ outDir: dir, validDays: 30, force: false });
    const files = await new AgentTlsStore(dir, silentLogger).issueFor("pp-uid-a");
    const cert = new X509Certificate(files["tls.crt"]);
    const ca = new X509Certificate(await readFile(join(dir, AGENT_TLS_FILES.bundle)));
    assert.ok(cert.verify(ca.publicKey));
    assert.equal(cert.subjectAltName, "URI:urn:peerpods:vm:pp-uid-a");
    assert.equal(files["ca.crt"], await readFile(join(dir, AGENT_TLS_FILES.bundle), "utf8"));
    assert.ok(!Object.values(files).some((text) => text.includes(ca.toString()) && text !== files["ca.crt"]));
    assert.ok(!Object.values(files).includes(await readFile(join(dir, AGENT_TLS_FILES.caKey), "utf8")));
  });

  it("refuses a name that cannot be a certificate identity", async () => {
    await ensureAgentCa({ outDir: dir, validDays: 30, force: false });
    await assert.rejects(new AgentTlsStore(dir, silentLogger).issueFor("a, URI:urn:peerpods:vm:b"), /cannot name a VM's agent certificate/);
  });

  it("reuses a valid CA and writes the keys owner-only", async () => {
    const first = await ensureAgentCa({ outDir: dir, validDays: 60, force: false });
    const again = await ensureAgentCa({ outDir: dir, validDays: 60, force: false });
    assert.equal(first.reused, false);
    assert.equal(again.reused, true);
    const { stat } = await import("node:fs/promises");
    assert.equal((await stat(join(dir, AGENT_TLS_FILES.caKey))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, AGENT_TLS_FILES.key))).mode & 0o777, 0o600);
  });

  it("reads a changed folder again (a rotated Secret), and keeps the last good material when the change does not load", async () => {
    await ensureAgentCa({ outDir: dir, validDays: 30, force: false });
    const store = new AgentTlsStore(dir, silentLogger);
    const before = await store.current();
    await ensureAgentCa({ outDir: dir, validDays: 30, force: true });
    const after = await store.current();
    assert.notEqual(after.bundle, before.bundle);
    await writeFile(join(dir, AGENT_TLS_FILES.key), "not a key");
    assert.equal((await store.current()).bundle, after.bundle);
  });

  it("refuses a folder whose client certificate no CA in the bundle signed", async () => {
    const other = await mkdtemp(join(tmpdir(), "peerpods-agent-tls-other-"));
    try {
      await ensureAgentCa({ outDir: dir, validDays: 30, force: false });
      await ensureAgentCa({ outDir: other, validDays: 30, force: false });
      await writeFile(join(dir, AGENT_TLS_FILES.cert), await readFile(join(other, AGENT_TLS_FILES.cert)));
      await writeFile(join(dir, AGENT_TLS_FILES.key), await readFile(join(other, AGENT_TLS_FILES.key)));
      await assert.rejects(new AgentTlsStore(dir, silentLogger).current(), /tls.crt was signed by no CA in ca.crt/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
