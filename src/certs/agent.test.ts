import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type Server } from "node:tls";
import { bundleCertificates } from "../agent-tls/files.js";
import type { VmTlsFiles } from "../agent-tls/issue.js";
import { AgentTlsStore } from "../agent-tls/store.js";
import { silentLogger } from "../log/logger.js";
import { ensureAgentCa, finishAgentCaRotation, rotateAgentCa } from "./agent.js";

/** A VM's agent as it booted with `files`: TLS 1.3, a client certificate from its bundle required. */
async function vmAgent(files: VmTlsFiles): Promise<Server> {
  const server = createServer({ cert: files["tls.crt"], key: files["tls.key"], ca: files["ca.crt"], requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" }, (socket) =>
    socket.end("served"),
  );
  server.on("tlsClientError", () => undefined);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

/** What the node gets from the VM named `name`: "served", or the error that ended the connection. */
async function reach(store: AgentTlsStore, server: Server, name: string): Promise<string> {
  const socket = connect({ ...(await store.clientFor(name)), host: "127.0.0.1", port: (server.address() as AddressInfo).port });
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
  return new Promise((resolve) => {
    socket.once("error", (error) => resolve(error.message));
    socket.once("close", () => resolve(answer));
  });
}

describe("rolling the agent channel's CA", () => {
  let dir: string;
  const servers: Server[] = [];
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "peerpods-agent-ca-test-"))));
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps VMs booted before the rotation reachable while new VMs get the new CA, and drops the old CA when finished", async () => {
    await ensureAgentCa({ outDir: dir, validDays: 30, force: false });
    const store = new AgentTlsStore(dir, silentLogger);
    const oldVm = await vmAgent(await store.issueFor("pp-old"));
    servers.push(oldVm);
    assert.equal(await reach(store, oldVm, "pp-old"), "served");

    await rotateAgentCa({ outDir: dir, validDays: 30 });
    const rotated = await store.current();
    assert.equal(bundleCertificates(rotated.bundle).length, 2, "old and new CA trusted during the overlap");
    const newFiles = await store.issueFor("pp-new");
    const newVm = await vmAgent(newFiles);
    servers.push(newVm);
    assert.equal(await reach(store, oldVm, "pp-old"), "served", "a VM that trusts only the old CA accepts the node's new certificate");
    assert.equal(await reach(store, newVm, "pp-new"), "served");

    await finishAgentCaRotation(dir);
    const finished = await store.current();
    assert.equal(bundleCertificates(finished.bundle).length, 1);
    assert.equal(finished.signer.cert, rotated.signer.cert);
    assert.equal(await reach(store, newVm, "pp-new"), "served");
    assert.match(await reach(store, oldVm, "pp-old"), /certificate/, "the old CA is no longer trusted");
  });
});
