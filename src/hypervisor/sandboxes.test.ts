import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { connect, createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../log/logger.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy } from "../policy/schema.js";
import { ProviderError, TAG } from "../providers/types.js";
import { kataHealthCheck, lineAgent } from "../test-support/agents.js";
import { MemoryProvider } from "../test-support/memory-provider.js";
import { instanceName } from "../kube/peerpod.js";
import { SANDBOX_ANNOTATION as A, parseSandboxAnnotations, type SandboxTarget } from "./annotations.js";
import type { ClusterView } from "./cluster.js";
import type { SandboxNetworkOptions } from "./sandbox-network.js";
import { Sandboxes, VmLostError } from "./sandboxes.js";
import type { SandboxPod } from "./tell.js";
import type { RpcError } from "./ttrpc.js";
import { Code } from "./ttrpc.js";
import type { PodRef, WorkerRecord } from "./vms.js";

/** A cluster where `pods` and `records` are what the apiserver would answer. */
function clusterOf(pods: Record<string, PodRef>, records: Record<string, WorkerRecord> = {}): ClusterView {
  return {
    pod: async (namespace, name) => pods[`${namespace}/${name}`],
    record: async (namespace, name) => records[`${namespace}/${name}`],
  };
}

async function waitUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** CreateVM as the service runs it: the pod looked up in the cluster, then the sandbox made. */
const createVM = async (sandboxes: Sandboxes, id: string, target: SandboxTarget) => sandboxes.create(id, await sandboxes.identify(target));

const shim = (name: string, namespace: string, extra: Record<string, string> = {}) =>
  parseSandboxAnnotations({ [A.name]: name, [A.namespace]: namespace, [A.machineType]: "", [A.vcpus]: "1", [A.memory]: "2048", ...extra });

describe("sandboxes (CreateVM / StartVM / StopVM over a provider)", () => {
  let dir: string;
  let agent: Server;
  let endpoint: string;
  let provider: MemoryProvider;
  let sandboxes: Sandboxes;
  const policy = compilePolicy(defaultPolicy(), 1);

  const make = (cluster?: ClusterView, extra: Partial<ConstructorParameters<typeof Sandboxes>[0]> = {}): Sandboxes =>
    new Sandboxes({ podsDir: dir, clusterId: "c1", provider: async () => provider, policy: () => policy, ...(cluster ? { cluster } : {}), log: silentLogger, pollMs: 10, ...extra });

  before(async () => {
    agent = createServer((socket) => socket.pipe(socket)).listen(0, "127.0.0.1");
    await once(agent, "listening");
    endpoint = `tcp:127.0.0.1:${(agent.address() as AddressInfo).port}`;
  });
  after(() => agent.close());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "peerpods-sbx-"));
    provider = new MemoryProvider(endpoint);
  });
  afterEach(async () => {
    await sandboxes?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("attaches to the VM the worker already made for the pod instead of creating a second", async () => {
    const uid = "0000-aaaa";
    const workers = await provider.create({ name: instanceName(uid), instanceType: policy.instanceTypes.get("small")!, userData: "", tags: { [TAG.cluster]: "c1", [TAG.podUid]: uid } });
    provider.calls.length = 0;
    sandboxes = make(clusterOf({ "shop/web": { uid, instanceType: "small" } }, { "shop/web": { podUID: uid, instanceName: instanceName(uid), instanceType: "small", instanceID: workers.id } }));
    const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    assert.equal(sandbox.record.instanceId, workers.id);
    assert.equal(sandbox.attached, true);
    assert.ok(!provider.calls.some((c) => c.startsWith("create")), "no create call");
    assert.equal(provider.instances.size, 1);
  });

  it("finds the worker's VM by the pod UID tag when the record has no instance id yet", async () => {
    const uid = "0000-bbbb";
    const workers = await provider.create({ name: instanceName(uid), instanceType: policy.instanceTypes.get("small")!, userData: "", tags: { [TAG.cluster]: "c1", [TAG.podUid]: uid } });
    sandboxes = make(clusterOf({ "shop/web": { uid } }, { "shop/web": { podUID: uid, instanceName: instanceName(uid), instanceType: "small" } }));
    assert.equal((await createVM(sandboxes, "sbx1", shim("web", "shop"))).record.instanceId, workers.id);
  });

  it("for a known pod with no VM yet, creates the very VM the worker would (same name, type and pod UID tag)", async () => {
    const uid = "0000-cccc";
    sandboxes = make(clusterOf({ "shop/web": { uid, instanceType: "large" } }));
    const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    const instance = provider.instances.get(sandbox.record.instanceId)!;
    assert.equal(instance.name, instanceName(uid));
    assert.equal(instance.instanceType, "large");
    assert.deepEqual(instance.tags, { [TAG.cluster]: "c1", [TAG.podUid]: uid, [TAG.namespace]: "shop", [TAG.podName]: "web", [TAG.instanceType]: "large" });
    assert.equal(sandbox.attached, false);
  });

  it("ignores a record left by an earlier pod of the same name", async () => {
    const old = await provider.create({ name: "pp-old", instanceType: policy.instanceTypes.get("small")!, userData: "", tags: { [TAG.cluster]: "c1", [TAG.podUid]: "old" } });
    sandboxes = make(clusterOf({ "shop/web": { uid: "new" } }, { "shop/web": { podUID: "old", instanceName: "pp-old", instanceType: "small", instanceID: old.id } }));
    const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    assert.notEqual(sandbox.record.instanceId, old.id);
    assert.equal(provider.instances.get(sandbox.record.instanceId)!.name, instanceName("new"));
  });

  it("for an unknown pod (no cluster), creates a VM sized from the annotations within the policy, named after the sandbox", async () => {
    sandboxes = make();
    const sandbox = await createVM(sandboxes, "sbx9", shim("web", "shop", { [A.vcpus]: "2", [A.memory]: "1024" }));
    const instance = provider.instances.get(sandbox.record.instanceId)!;
    assert.equal(instance.name, "pp-sandbox-sbx9");
    assert.equal(instance.instanceType, "medium");
    assert.equal(instance.tags[TAG.podUid], undefined);
    const named = await createVM(sandboxes, "sbx10", shim("web2", "shop", { [A.machineType]: "large" }));
    assert.equal(provider.instances.get(named.record.instanceId)!.instanceType, "large");
  });

  it("uses the UID a CRI-O sandbox name carries even without a cluster", async () => {
    sandboxes = make();
    const sandbox = await createVM(sandboxes, "sbx1", parseSandboxAnnotations({ [A.name]: "k8s_web_shop_1234abcd_0" }));
    assert.equal(provider.instances.get(sandbox.record.instanceId)!.name, instanceName("1234abcd"));
  });

  it("refuses, with the policy's reason, a machine type the policy does not have", async () => {
    sandboxes = make();
    await assert.rejects(createVM(sandboxes, "sbx1", shim("web", "shop", { [A.machineType]: "x9.huge" })), (error: RpcError) => {
      assert.equal(error.code, Code.FAILED_PRECONDITION);
      assert.match(error.message, /shop\/web.*x9\.huge.*not allowed/);
      return true;
    });
    assert.equal(provider.instances.size, 0);
  });

  it("maps provider errors to statuses the shim reports: quota → RESOURCE_EXHAUSTED, and a later retry works", async () => {
    sandboxes = make();
    provider.failCreate = new ProviderError("quota", "instance limit of 0 reached");
    await assert.rejects(createVM(sandboxes, "sbx1", shim("web", "shop")), (error: RpcError) => error.code === Code.RESOURCE_EXHAUSTED && /instance limit/.test(error.message));
    provider.failCreate = undefined;
    await createVM(sandboxes, "sbx1", shim("web", "shop"));
    assert.equal(provider.instances.size, 1);
  });

  it("is idempotent per sandbox id, also for concurrent calls", async () => {
    sandboxes = make();
    const [a, b] = await Promise.all([createVM(sandboxes, "sbx1", shim("web", "shop")), createVM(sandboxes, "sbx1", shim("web", "shop"))]);
    const c = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    assert.equal(a, b);
    assert.equal(a, c);
    assert.equal(provider.instances.size, 1);
    assert.ok((await stat(a.socketPath)).isSocket());
  });

  it("StartVM waits until the VM is ready and its agent answers, then the socket reaches the agent", async () => {
    sandboxes = make();
    const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    let started = false;
    const starting = sandboxes.start("sbx1", new AbortController().signal).then(() => (started = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(started, false, "not before the VM is ready");
    provider.boot(sandbox.record.instanceId);
    await starting;
    const socket = connect(sandbox.socketPath);
    socket.end("ping");
    const [echo] = (await once(socket, "data")) as [Buffer];
    assert.equal(echo.toString(), "ping");
  });

  it("StartVM gives up with DEADLINE_EXCEEDED and says what it saw", async () => {
    sandboxes = make(undefined, { startTimeoutMs: 80 });
    await createVM(sandboxes, "sbx1", shim("web", "shop"));
    await assert.rejects(sandboxes.start("sbx1", new AbortController().signal), (error: RpcError) => {
      assert.equal(error.code, Code.DEADLINE_EXCEEDED);
      assert.match(error.message, /shop\/web.*not reachable.*state pending, ready false, agent endpoint none/);
      return true;
    });
  });

  it("StartVM fails fast when the VM is gone, and for an unknown sandbox", async () => {
    sandboxes = make();
    const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    provider.instances.delete(sandbox.record.instanceId);
    await assert.rejects(sandboxes.start("sbx1", new AbortController().signal), (error: RpcError) => error.code === Code.FAILED_PRECONDITION && /gone/.test(error.message));
    await assert.rejects(sandboxes.start("nope", new AbortController().signal), (error: RpcError) => error.code === Code.NOT_FOUND);
  });

  it("StartVM on a sandbox whose VM was up and is gone now says the VM is lost (the shim asks when its agent connection drops)", async () => {
    sandboxes = make();
    const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    provider.boot(sandbox.record.instanceId);
    await sandboxes.start("sbx1", new AbortController().signal);
    await sandboxes.start("sbx1", new AbortController().signal);
    provider.instances.delete(sandbox.record.instanceId);
    await assert.rejects(sandboxes.start("sbx1", new AbortController().signal), (error: RpcError) => {
      assert.ok(error instanceof VmLostError, `${error.constructor.name}: ${error.message}`);
      assert.equal(error.code, Code.FAILED_PRECONDITION);
      assert.match(error.message, /VM .* of pod shop\/web is gone; the pod's containers went with it/);
      return true;
    });
  });

  it("a VM whose agent answers the shim's ttrpc outside ttrpc: each exchange ends at once, the pod is told once, naming the image", async () => {
    const line = await lineAgent();
    try {
      provider = new MemoryProvider(line.endpoint);
      const told: { who: SandboxPod; reason: string; message: string }[] = [];
      sandboxes = make(clusterOf({ "shop/web": { uid: "0000-eeee" } }), { tell: (who, _type, reason, message) => told.push({ who, reason, message }) });
      const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
      Object.assign(provider.instances.get(sandbox.record.instanceId)!, { image: "podvm-1" });
      provider.boot(sandbox.record.instanceId);
      await sandboxes.start("sbx1", new AbortController().signal);
      for (let attempt = 0; attempt < 2; attempt++) {
        const socket = connect(sandbox.socketPath);
        socket.setTimeout(3000, () => socket.destroy(new Error("the shim would still be waiting")));
        socket.write(kataHealthCheck());
        const [hadError] = (await once(socket, "close")) as [boolean];
        assert.equal(hadError, false);
      }
      await waitUntil(() => told.length > 0);
      assert.equal(told.length, 1, "told once");
      assert.deepEqual([told[0]!.who.pod, told[0]!.who.podUID, told[0]!.reason], ["shop/web", "0000-eeee", "SandboxAgentProtocolMismatch"]);
      assert.match(told[0]!.message, /VM vm-1 \(image podvm-1\) answered "error: unknown command.*expects kata-agent, which speaks ttrpc/);
    } finally {
      line.server.close();
    }
  });

  it("StopVM deletes the VM, removes the socket and folder, and is idempotent", async () => {
    sandboxes = make();
    const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    assert.equal((await sandboxes.stop("sbx1"))?.instanceId, sandbox.record.instanceId);
    assert.equal(provider.instances.size, 0);
    assert.deepEqual(await readdir(dir), []);
    assert.equal(await sandboxes.stop("sbx1"), undefined);
    assert.equal(await sandboxes.stop("never-created"), undefined);
  });

  it("StopVM succeeds when its delete fails because the VM went meanwhile, and fails while the VM is still there", async () => {
    sandboxes = make();
    const sandbox = await createVM(sandboxes, "sbx1", shim("web", "shop"));
    const { instanceId } = sandbox.record;
    const realDelete = provider.delete.bind(provider);
    provider.delete = async (id) => {
      provider.instances.delete(id); // the worker's teardown got there first
      throw new Error("ENOENT: no such file or directory, open '.../stopping'");
    };
    assert.equal((await sandboxes.stop("sbx1"))?.instanceId, instanceId);

    const other = await createVM(sandboxes, "sbx2", shim("api", "shop"));
    provider.delete = async () => {
      throw new ProviderError("retryable", "cloud throttled");
    };
    await assert.rejects(sandboxes.stop("sbx2"), (error: RpcError) => error.code === Code.UNAVAILABLE);
    provider.delete = realDelete;
    await sandboxes.stop("sbx2");
    assert.equal(provider.instances.has(other.record.instanceId), false, "a retried StopVM deletes it");
  });

  it("the pod network is connected once per sandbox, kept in its record across a restart, and detached at StopVM", async () => {
    const calls: string[] = [];
    const network: SandboxNetworkOptions = {
      networker: {
        attach: async (netns, id, vmIp) => {
          calls.push(`attach ${netns} ${id} ${vmIp}`);
          return { interface: "eth0", mac: "ee:eb:7f:09:03:1e", mtu: 1500, addresses: ["10.88.0.5/24"], routes: [], vni: 7, port: 4789, nodeIp: "10.224.0.1", vmIp };
        },
        detach: async (netns) => void calls.push(`detach ${netns}`),
      },
      configureVm: async (target) => void calls.push(`configure ${target.endpoint}`),
      tell: () => undefined,
      log: silentLogger,
    };
    const first = make(undefined, { network });
    const sandbox = await first.create("sbx1", await first.identify(shim("web", "shop")), "/run/netns/cni-1");
    provider.boot(sandbox.record.instanceId);
    provider.instances.get(sandbox.record.instanceId)!.privateIp = "10.224.0.2";
    await first.start("sbx1", new AbortController().signal);
    await first.start("sbx1", new AbortController().signal);
    assert.deepEqual(calls, ["attach /run/netns/cni-1 sbx1 10.224.0.2", `configure ${endpoint}`], "once, though StartVM came twice");
    await first.close();
    sandboxes = make(undefined, { network });
    assert.equal(await sandboxes.restore(), 1);
    assert.deepEqual((await sandboxes.podOf("sbx1")) as unknown, { ...sandbox.record, network: { state: "connected", podIp: "10.88.0.5", vmIp: "10.224.0.2", vni: 7 } });
    await sandboxes.start("sbx1", new AbortController().signal);
    await sandboxes.stop("sbx1");
    assert.deepEqual(calls.slice(2), ["detach /run/netns/cni-1"], "not connected again after the restart; detached before the VM went");
    assert.equal(provider.instances.size, 0);
  });

  it("after a restart, reopens the agent sockets, knows the pod's uid, and StopVM still finds the VM", async () => {
    const cluster = clusterOf({ "shop/web": { uid: "0000-ffff", resourceVersion: "42" } });
    const first = make(cluster);
    const sandbox = await createVM(first, "sbx1", shim("web", "shop"));
    provider.boot(sandbox.record.instanceId);
    await first.close();
    sandboxes = make(cluster);
    assert.equal(await sandboxes.restore(), 1);
    assert.deepEqual(await sandboxes.podOf("sbx1"), { sandboxId: "sbx1", instanceId: sandbox.record.instanceId, pod: "shop/web", podUID: "0000-ffff", podResourceVersion: "42" });
    const socket = connect(sandbox.socketPath);
    socket.end("again");
    const [echo] = (await once(socket, "data")) as [Buffer];
    assert.equal(echo.toString(), "again");
    await sandboxes.stop("sbx1");
    assert.equal(provider.instances.size, 0);
  });
});
