import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:tls";
import { AgentTlsStore } from "../agent-tls/store.js";
import type { VmTlsFiles } from "../agent-tls/issue.js";
import { ensureAgentCa } from "../certs/agent.js";
import { silentLogger } from "../log/logger.js";
import { agentTlsRefusals } from "../metrics/agent-tls.js";
import { probeEndpoint, startForwarder, type Forwarder } from "./forwarder.js";

/** A VM's agent as peerpods-agent serves it: TLS 1.3, its own certificate, a client certificate from the bundle required; echoes bytes. */
async function tlsAgent(files: VmTlsFiles): Promise<{ server: Server; endpoint: string; connections: () => number }> {
  let connections = 0;
  const server = createServer({ cert: files["tls.crt"], key: files["tls.key"], ca: files["ca.crt"], requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" }, (socket) =>
    socket.pipe(socket),
  );
  server.on("connection", () => connections++);
  server.on("tlsClientError", () => undefined);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, endpoint: `tcp:127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

/** What the shim gets back through the forwarder for `payload`: the echo, or nothing when the connection is closed. */
async function through(path: string, payload: string): Promise<string> {
  const socket = connect(path);
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => {
    received.push(chunk);
    if (Buffer.concat(received).length >= payload.length) socket.end();
  });
  socket.write(payload);
  await once(socket, "close");
  return Buffer.concat(received).toString();
}

describe("agent socket forwarder with mutual TLS", () => {
  let dir: string;
  let node: AgentTlsStore;
  let otherCluster: AgentTlsStore;
  const closers: (() => Promise<unknown> | void)[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "peerpods-fwd-tls-"));
    await ensureAgentCa({ outDir: join(dir, "ca"), validDays: 2, force: true });
    await ensureAgentCa({ outDir: join(dir, "other"), validDays: 2, force: true });
    node = new AgentTlsStore(join(dir, "ca"), silentLogger);
    otherCluster = new AgentTlsStore(join(dir, "other"), silentLogger);
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const refusedWith: string[] = [];
  async function forward(agent: { endpoint: string }, expected: string): Promise<string> {
    const path = join(dir, `sandbox-${closers.length}`, "agent.ttrpc");
    const forwarder: Forwarder = await startForwarder({
      path,
      target: async () => ({ endpoint: agent.endpoint, tls: await node.clientFor(expected) }),
      log: silentLogger,
      onRefused: (error) => refusedWith.push(error.message),
    });
    closers.push(() => forwarder.close());
    return path;
  }

  async function agentWith(files: VmTlsFiles): Promise<Awaited<ReturnType<typeof tlsAgent>>> {
    const agent = await tlsAgent(files);
    closers.push(() => new Promise((resolve) => agent.server.close(resolve)));
    return agent;
  }

  const refusals = async (): Promise<number> => (await agentTlsRefusals.get()).values[0]?.value ?? 0;

  it("reaches the VM it expects over TLS 1.3", async () => {
    const agent = await agentWith(await node.issueFor("pp-a"));
    assert.equal(await through(await forward(agent, "pp-a"), "ttrpc bytes"), "ttrpc bytes");
  });

  it("refuses a VM whose certificate names another instance, at once and counted", async () => {
    const agent = await agentWith(await node.issueFor("pp-b"));
    const before = await refusals();
    assert.equal(await through(await forward(agent, "pp-a"), "ttrpc bytes"), "");
    assert.equal(await refusals(), before + 1);
    assert.equal(agent.connections(), 1, "a refusal is not retried");
    assert.match(refusedWith.at(-1) ?? "", /the agent's certificate is not for VM pp-a/, "the hypervisor part is told why (for an Event on the pod)");
  });

  it("refuses a VM whose certificate another cluster's CA signed, even for the right name", async () => {
    const agent = await agentWith(await otherCluster.issueFor("pp-a"));
    assert.equal(await through(await forward(agent, "pp-a"), "ttrpc bytes"), "");
  });

  it("gets nothing through from an agent that refuses the node's certificate", async () => {
    const vm = await node.issueFor("pp-a");
    const agent = await agentWith({ ...vm, "ca.crt": (await otherCluster.current()).bundle });
    assert.equal(await through(await forward(agent, "pp-a"), "ttrpc bytes"), "");
  });

  it("probes a VM as reachable only when the TLS handshake with the expected VM succeeds", async () => {
    const agent = await agentWith(await node.issueFor("pp-a"));
    assert.equal(await probeEndpoint({ endpoint: agent.endpoint, tls: await node.clientFor("pp-a") }, 2000), true);
    assert.equal(await probeEndpoint({ endpoint: agent.endpoint, tls: await node.clientFor("pp-b") }, 2000), false);
    assert.equal(await probeEndpoint({ endpoint: agent.endpoint, tls: await otherCluster.clientFor("pp-a") }, 2000), false);
  });
});
