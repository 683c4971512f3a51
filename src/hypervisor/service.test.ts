import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EventTarget, EventType } from "../kube/events.js";
import { silentLogger } from "../log/logger.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy } from "../policy/schema.js";
import { MemoryProvider } from "../test-support/memory-provider.js";
import { TestTtrpcClient } from "../test-support/ttrpc-client.js";
import { SANDBOX_ANNOTATION as A } from "./annotations.js";
import { HYPERVISOR_SERVICE, hypervisorMessages as m } from "./protos.js";
import { Sandboxes } from "./sandboxes.js";
import { hypervisorService } from "./service.js";
import { podEvents } from "./tell.js";
import { Code, startTtrpcServer, type TtrpcServer } from "./ttrpc.js";
import type { PodRef } from "./vms.js";

describe("hypervisor.Hypervisor over ttrpc", () => {
  let dir: string;
  let provider: MemoryProvider;
  let server: TtrpcServer;
  let client: TestTtrpcClient;
  let sandboxes: Sandboxes;
  const events: { target: EventTarget; type: EventType; reason: string; message: string }[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "peerpods-hv-"));
    provider = new MemoryProvider("tcp:127.0.0.1:1");
    // The cluster knows shop/web and shop/api (not shop/gone): kubectl describe finds Events on a pod by its uid.
    const known: Record<string, PodRef> = { web: { uid: "uid-web", resourceVersion: "17" }, api: { uid: "uid-api", resourceVersion: "18" } };
    const cluster = { pod: async (_ns: string, name: string) => known[name], record: async () => undefined };
    sandboxes = new Sandboxes({ podsDir: join(dir, "pods"), clusterId: "c1", provider: async () => provider, policy: () => compilePolicy(defaultPolicy(), 1), cluster, log: silentLogger, startTimeoutMs: 50, pollMs: 10 });
    const recorder = { record: (target: EventTarget, type: EventType, reason: string, message: string) => events.push({ target, type, reason, message }) };
    server = await startTtrpcServer({ path: join(dir, "hv.sock"), services: hypervisorService(sandboxes, silentLogger, podEvents(recorder)), log: silentLogger });
    client = await TestTtrpcClient.open(join(dir, "hv.sock"));
  });
  after(async () => {
    client.close();
    await server.close(0);
    await sandboxes.close();
    await rm(dir, { recursive: true, force: true });
  });

  const call = (method: string, payload: Uint8Array) => client.call(HYPERVISOR_SERVICE, method, payload);

  it("answers Version with peerpods' version", async () => {
    const { version } = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    const reply = await call("Version", m.versionRequest.encode({ version: "0.0.1" }));
    assert.equal(reply.status.code, Code.OK);
    assert.equal(m.versionResponse.decode(reply.payload).version, version);
  });

  it("CreateVM returns the sandbox's agent socket and tells the pod which VM it runs in", async () => {
    const request = m.createVMRequest.encode({ id: "sbx-a", annotations: { [A.name]: "web", [A.namespace]: "shop", [A.machineType]: "small" }, networkNamespacePath: "/var/run/netns/x" });
    const reply = await call("CreateVM", request);
    assert.equal(reply.status.code, Code.OK, reply.status.message);
    assert.equal(m.createVMResponse.decode(reply.payload).agentSocketPath, join(dir, "pods", "sbx-a", "agent.ttrpc"));
    assert.equal(provider.instances.size, 1);
    const event = events.at(-1)!;
    assert.deepEqual(event.target, { apiVersion: "v1", kind: "Pod", namespace: "shop", name: "web", uid: "uid-web", resourceVersion: "17" });
    assert.deepEqual([event.type, event.reason], ["Normal", "SandboxVM"]);
    assert.match(event.message, /sbx-a runs in VM vm-1/);
  });

  it("a refused CreateVM puts its reason on the pod, with the pod's uid", async () => {
    const reply = await call("CreateVM", m.createVMRequest.encode({ id: "sbx-b", annotations: { [A.name]: "api", [A.namespace]: "shop", [A.machineType]: "x9.huge" } }));
    assert.equal(reply.status.code, Code.FAILED_PRECONDITION);
    const event = events.at(-1)!;
    assert.deepEqual([event.target.uid, event.target.resourceVersion, event.type, event.reason], ["uid-api", "18", "Warning", "SandboxCreateVMFailed"]);
    assert.match(event.message, /x9\.huge/);
  });

  it("a pod the cluster does not know gets its Events by namespace and name alone", async () => {
    assert.equal((await call("CreateVM", m.createVMRequest.encode({ id: "sbx-c", annotations: { [A.name]: "gone", [A.namespace]: "shop" } }))).status.code, Code.OK);
    assert.deepEqual(events.at(-1)!.target, { apiVersion: "v1", kind: "Pod", namespace: "shop", name: "gone" });
    assert.equal((await call("StopVM", m.stopVMRequest.encode({ id: "sbx-c" }))).status.code, Code.OK);
  });

  it("StartVM that times out answers DEADLINE_EXCEEDED and puts a Warning on the pod", async () => {
    const reply = await call("StartVM", m.startVMRequest.encode({ id: "sbx-a" }));
    assert.equal(reply.status.code, Code.DEADLINE_EXCEEDED);
    const event = events.at(-1)!;
    assert.deepEqual([event.target.name, event.target.uid, event.type, event.reason], ["web", "uid-web", "Warning", "SandboxStartVMFailed"]);
    assert.match(event.message, /not reachable/);
  });

  it("refuses a sandbox id that could leave the pods folder, and a payload that is not the request", async () => {
    const escape = await call("CreateVM", m.createVMRequest.encode({ id: "../../etc", annotations: {} }));
    assert.equal(escape.status.code, Code.INVALID_ARGUMENT);
    assert.match(escape.status.message, /sandbox id/);
    const garbage = await call("StopVM", Buffer.from([0x0a, 0xff]));
    assert.equal(garbage.status.code, Code.INVALID_ARGUMENT);
    assert.match(garbage.status.message, /malformed/);
  });

  it("StopVM deletes the VM, and again is still OK", async () => {
    assert.equal((await call("StopVM", m.stopVMRequest.encode({ id: "sbx-a" }))).status.code, Code.OK);
    assert.equal(provider.instances.size, 0);
    assert.equal((await call("StopVM", m.stopVMRequest.encode({ id: "sbx-a" }))).status.code, Code.OK);
  });
});
