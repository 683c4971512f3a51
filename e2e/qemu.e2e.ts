import assert from "node:assert/strict";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import type { InstanceType } from "../src/policy/schema.js";
import { createProvider } from "../src/providers/factory.js";
import { hostInterfaces, type HostInterface } from "../src/providers/qemu/ip.js";
import { chooseNetwork, vpcSupport } from "../src/providers/qemu/network-mode.js";
import { bridgeMac, bridgeName, tapName, VPC_MTU } from "../src/providers/qemu/vpc-addressing.js";
import { TAG, type Instance, type InstanceSpec, type Provider, type ProviderError } from "../src/providers/types.js";
import { VM_READY_CONDITION } from "../src/kube/annotations.js";
import { withAgent, type AgentHealth } from "../src/runtime/agent-client.js";
import { cluster } from "./setup.js";
import { trackedTempDir } from "./support/leftovers.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR, withWebhookUrl, removeWebhookConfigs } from "./support/manifests.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { processesMentioning } from "./support/processes.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const CLUSTER = "qemu-suite";
const SMALL: InstanceType = { name: "small", vcpus: 1, memoryMiB: 256, gpus: 0 };
const BOOT_TIMEOUT_MS = 120_000;

function spec(uid: string, userData: object = {}): InstanceSpec {
  return {
    name: `pp-${uid}`,
    instanceType: SMALL,
    userData: JSON.stringify({ cluster: CLUSTER, namespace: "default", pod: `pod-${uid}`, podUID: uid, ...userData }),
    tags: { [TAG.cluster]: CLUSTER, [TAG.podUid]: uid, [TAG.namespace]: "default", [TAG.podName]: `pod-${uid}`, [TAG.instanceType]: SMALL.name },
  };
}

/** What the VM's agent says of itself, asked on its endpoint (its private IP on the VPC, a forwarded port in user mode). */
function agentHealth(endpoint: string): Promise<AgentHealth> {
  return withAgent(endpoint, (agent) => agent.health());
}

/** The host's interface named `name`, if there is one. */
async function hostInterface(name: string): Promise<HostInterface | undefined> {
  return (await hostInterfaces()).find((entry) => entry.name === name);
}

describe("qemu provider: real pod VMs", function () {
  this.timeout(BOOT_TIMEOUT_MS * 2);
  let stateDir: string;
  const log = pino({ level: process.env.E2E_LOG_LEVEL ?? "silent" });
  const providers: Provider[] = [];
  const newProvider = async (settings: Record<string, unknown> = {}): Promise<Provider> => {
    const created = await createProvider({ name: "qemu", qemu: settings }, { clusterId: CLUSTER, stateDir, log });
    providers.push(created);
    return created;
  };
  let provider: Provider;
  let booted: Instance[] = [];
  /** This host runs the VMs on the provider's VPC (root, /dev/net/tun, ip), as the provider's `auto` decides. */
  let vpc: boolean;
  let bridge: string;

  before(async () => {
    // Short: unix socket paths in the VM folders must stay under 108 bytes.
    stateDir = trackedTempDir("pp-qemu-");
    provider = await newProvider();
    vpc = chooseNetwork("auto", await vpcSupport()).mode === "vpc";
    bridge = bridgeName(resolve(stateDir));
  });

  after(async () => {
    // Whatever happened above, leave no VM behind, and no bridge: closing providers with no VM left removes it.
    for (const pid of await processesMentioning(`${stateDir}/`)) process.kill(pid, "SIGKILL");
    await rm(stateDir, { recursive: true, force: true });
    await Promise.all(providers.map((created) => created.close()));
  });

  it("is healthy: binary, image and a probe boot", async () => {
    const health = await waitFor(async () => {
      const current = await provider.health();
      return (current.healthy || current.message !== "probe boot in progress") && current;
    }, { timeoutMs: BOOT_TIMEOUT_MS, message: "the probe boot", intervalMs: 200 });
    assert.equal(health.healthy, true, health.message);
    assert.match(health.message ?? "", /^(kvm|tcg)\/(microvm|q35): probe VM ready/);
    assert.match(health.message ?? "", vpc ? new RegExp(`; network: vpc \\(bridge ${bridge}\\)$`) : /; network: user-mode \(auto: /);
  });

  it("boots three VMs at once and each reports ready and answers on its agent port", async () => {
    const specs = [spec("u1", { command: ["sh", "-c", "echo hello from $(uname -r)"] }), spec("u2"), spec("u3", { command: ["sleep", "3600"] })];
    const created = await Promise.all(specs.map((s) => provider.create(s)));
    assert.equal(new Set(created.map((i) => i.id)).size, 3);
    booted = await Promise.all(
      created.map((instance) =>
        waitFor(async () => {
          const current = await provider.get(instance.id);
          if (current?.state === "terminated") throw new Error(`VM ${instance.id} terminated: ${current.message}`);
          return current?.ready && current;
        }, { timeoutMs: BOOT_TIMEOUT_MS, message: `VM ${instance.id} ready`, intervalMs: 100 }),
      ),
    );
    for (const instance of booted) {
      assert.equal(instance.state, "running");
      assert.match(instance.agentEndpoint ?? "", vpc ? /^tcp:10\.(22[4-9]|23\d)\.\d+\.\d+:1024$/ : /^tcp:127\.0\.0\.1:\d+$/);
      const health = await agentHealth(instance.agentEndpoint!);
      assert.equal(health.ready, true);
      assert.equal(health.instance_id, instance.id, "the endpoint reaches this VM's agent");
    }
  });

  it("puts each VM on the provider's VPC: its tap on the bridge, MTU 9000, a private IP of its own the host reaches", async function () {
    if (!vpc) this.skip(); // user mode on this host: the test above reached the agents through forwarded ports
    const ips = booted.map((instance) => instance.privateIp);
    assert.equal(new Set(ips).size, 3, `three addresses: ${ips.join(", ")}`);
    const ownBridge = await hostInterface(bridge);
    assert.equal(ownBridge?.mtu, VPC_MTU);
    const [gateway] = ownBridge?.ipv4 ?? [];
    assert.match(gateway ?? "", /\.1\/24$/, "the bridge has the subnet's first address");
    const macOf = async (device: string): Promise<string> => (await readFile(`/sys/class/net/${device}/address`, "utf8")).trim();
    assert.equal(await macOf(bridge), bridgeMac(resolve(stateDir)), "the bridge keeps its own MAC with taps on it (else it takes the lowest tap's, and VMs lose the host)");
    for (const instance of booted) {
      assert.equal(instance.privateIp?.split(".").slice(0, 3).join("."), gateway!.split(".").slice(0, 3).join("."), "the VM's address is in the bridge's subnet");
      const tap = await hostInterface(tapName(instance.id));
      assert.deepEqual([tap?.master, tap?.mtu], [bridge, VPC_MTU], `tap of ${instance.id}`);
      const record = JSON.parse(await readFile(join(stateDir, "qemu", instance.id, "instance.json"), "utf8")) as Record<string, unknown>;
      assert.deepEqual([record.network, record.privateIp, record.hostPort], ["vpc", instance.privateIp, undefined]);
      assert.equal((await agentHealth(`tcp:${instance.privateIp}:1024`)).instance_id, instance.id, "the agent answers at the VM's private IP");
    }
  });

  it("runs the first container's command and streams its output to the host", async () => {
    const u1 = booted.find((i) => i.tags[TAG.podUid] === "u1")!;
    const output = await waitFor(async () => {
      const text = await readFile(join(stateDir, "qemu", u1.id, "workload.log"), "utf8");
      return /hello from \S+-cloud-amd64/.test(text) && text;
    }, { timeoutMs: 30_000, message: "workload output" });
    assert.match(output, /hello from/);
    await waitFor(async () => (await provider.get(u1.id))?.message?.includes("workload exited with code 0"), { timeoutMs: 30_000, message: "workload exit reported by the heartbeat", intervalMs: 500 });
    const u3 = booted.find((i) => i.tags[TAG.podUid] === "u3")!;
    assert.equal((await agentHealth(u3.agentEndpoint!)).workload, "running");
  });

  it("is idempotent: creating the same pod again returns its VM", async () => {
    const again = await provider.create(spec("u2"));
    assert.equal(again.id, booted.find((i) => i.tags[TAG.podUid] === "u2")!.id);
    assert.equal((await provider.list({ [TAG.cluster]: CLUSTER })).length, 3);
  });

  it("a new provider object on the same state folder lists the same VMs", async () => {
    const restarted = await newProvider();
    const listed = await restarted.list({ [TAG.cluster]: CLUSTER });
    assert.deepEqual(listed.map((i) => i.id).sort(), booted.map((i) => i.id).sort());
    assert.ok(listed.every((i) => i.ready && i.state === "running"));
    assert.deepEqual((await restarted.list({ [TAG.podUid]: "u2" })).map((i) => i.name), ["pp-u2"]);
    assert.deepEqual(await restarted.list({ [TAG.cluster]: "someone-else" }), []);
  });

  it("refuses a VM beyond the host's capacity with a quota error", async () => {
    const full = await newProvider({ maxVMs: 3 });
    await assert.rejects(full.create(spec("u4")), (error: ProviderError) => error.kind === "quota" && /3 VMs/.test(error.message));
    const tight = await newProvider({ maxMemoryMiB: 3 * SMALL.memoryMiB + 100 });
    await assert.rejects(tight.create(spec("u4")), (error: ProviderError) => error.kind === "quota" && /memory/.test(error.message));
  });

  it("shows a VM whose qemu died as terminated", async () => {
    const victim = booted[1]!;
    const { pid } = JSON.parse(await readFile(join(stateDir, "qemu", victim.id, "instance.json"), "utf8")) as { pid: number };
    process.kill(pid, "SIGKILL");
    const seen = await waitFor(async () => {
      const current = await provider.get(victim.id);
      return current?.state === "terminated" && current;
    }, { timeoutMs: 10_000, message: "terminated state" });
    assert.equal(seen.ready, false);
  });

  it("deletes every VM, each by two calls at once, and leaves no qemu process, no tap and no state", async () => {
    const listed = await provider.list({});
    assert.equal(listed.length, 3);
    const alive = listed.find((instance) => instance.state !== "terminated")!;
    if (vpc) assert.equal((await hostInterface(tapName(alive.id)))?.master, bridge, "a live VM's tap is there before the delete");
    await Promise.all(listed.flatMap((i) => [provider.delete(i.id), provider.delete(i.id)]));
    assert.deepEqual(await provider.list({}), []);
    assert.equal(await provider.get(listed[0]!.id), undefined);
    await provider.delete(listed[0]!.id);
    assert.deepEqual(await readdir(join(stateDir, "qemu")), []);
    assert.deepEqual(await processesMentioning(`${stateDir}/`), []);
    const taps = new Set(listed.map((instance) => tapName(instance.id)));
    assert.deepEqual((await hostInterfaces()).filter((entry) => taps.has(entry.name)), []);
  });

  it("network: user gives a VM qemu's user-mode network: its agent at a forwarded loopback port, no private IP, no tap", async () => {
    const user = await newProvider({ network: "user" });
    const created = await user.create(spec("u6"));
    const ready = await waitFor(async () => {
      const current = await user.get(created.id);
      return current?.ready && current;
    }, { timeoutMs: BOOT_TIMEOUT_MS, message: `VM ${created.id} ready`, intervalMs: 100 });
    assert.match(ready.agentEndpoint ?? "", /^tcp:127\.0\.0\.1:\d+$/);
    assert.equal(ready.privateIp, undefined);
    assert.equal((await agentHealth(ready.agentEndpoint!)).instance_id, ready.id);
    assert.equal(await hostInterface(tapName(ready.id)), undefined);
    assert.match((await user.health()).message ?? "", /; network: user-mode \(set in the settings\)$/);
    await user.delete(ready.id);
  });

  it("keeps the bridge while a provider closes with VMs alive, removes it once none is left", async function () {
    if (!vpc) this.skip(); // no bridge in user mode
    const running = await provider.create(spec("u5"));
    const holder = await newProvider();
    await holder.close();
    assert.ok(await hostInterface(bridge), "a VM still runs on the bridge");
    await provider.delete(running.id);
    assert.ok(await hostInterface(bridge), "deleting the last VM leaves the bridge to the provider's close");
    await Promise.all(providers.map((created) => created.close()));
    assert.equal(await hostInterface(bridge), undefined);
  });
});

describe("qemu provider on the local control plane: peer pods get real VMs and become Ready", function () {
  this.timeout(BOOT_TIMEOUT_MS * 3);
  const NAMESPACE = "qemu-e2e";
  const CLUSTER_ID = "qemu-e2e";
  const NODE = "qemu-node-1";
  let admin: KubeConfig;
  let core: CoreV1Api;
  let webhookConfig: KubernetesObject[];
  let peerpods: Peerpods;
  let provider: Provider;
  let dir: string;

  const podVMs = async (): Promise<Instance[]> => (await provider.list({ [TAG.cluster]: CLUSTER_ID })).filter((i) => i.state !== "terminated");
  const peerPod = (name: string): V1Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: { runtimeClassName: "kata-remote", containers: [{ name: "app", image: "busybox", command: ["sh", "-c", "echo hi"], resources: { requests: { cpu: "250m", memory: "128Mi" } } }] },
  });
  const condition = (pod: V1Pod, type: string): string | undefined => pod.status?.conditions?.find((c) => c.type === type)?.status;
  /** The vm-ready condition as the worker writes it. */
  const vmReadyByWorker = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === VM_READY_CONDITION && c.status === "True" && c.reason === "VMReady") ?? false;

  before(async function () {
    this.timeout(180_000);
    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    const manifests = await loadManifests(LOCAL_OVERLAY_DIR);
    webhookConfig = manifests.filter((o) => o.kind === "MutatingWebhookConfiguration");
    await applyObjects(admin, manifests.filter((o) => o.kind !== "MutatingWebhookConfiguration"));
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });
    await cluster().addNodes([{ name: NODE }]);
    await core.patchNodeStatus({ name: NODE, body: { status: { capacity: { "kata.peerpods.io/vm": "4" }, allocatable: { "kata.peerpods.io/vm": "4" } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));

    dir = trackedTempDir("qemu-e2e-");
    const policyFile = join(dir, "policy.json");
    await writeFile(policyFile, JSON.stringify({ instanceTypes: [{ name: "small", vcpus: 1, memoryMiB: 256 }], provider: { name: "qemu", qemu: { maxVMs: 4 } } }));
    const kubeconfig = await serviceAccountKubeconfig(admin, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    peerpods = await startPeerpods({ kubeconfig, args: ["--parts=webhook,worker", `--policy-file=${policyFile}`, `--cluster-id=${CLUSTER_ID}`, "--no-leader-elect"] });
    await applyObjects(admin, withWebhookUrl(webhookConfig, peerpods.webhookUrl, peerpods.caBundle));
    await waitFor(
      async () => (await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("qemu-probe"), dryRun: "All" })).metadata?.annotations?.["peerpods.io/instance-type"] !== undefined,
      { timeoutMs: 20_000, message: "the apiserver to call the webhook" },
    );
    provider = await createProvider({ name: "qemu", qemu: { maxVMs: 4 } }, { clusterId: CLUSTER_ID, stateDir: peerpods.stateDir, log: pino({ level: "silent" }) });
  });

  after(async function () {
    this.timeout(120_000);
    for (const instance of provider ? await provider.list({}).catch(() => []) : []) await provider.delete(instance.id).catch(() => undefined);
    await peerpods?.kill();
    // peerpods was killed and closed nothing: this provider's close removes the VPC bridge the VMs left.
    await provider?.close();
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    await core.deleteNode({ name: NODE }).catch(() => undefined);
    await removeWebhookConfigs(admin, webhookConfig);
  });

  it("two peer pods: one real VM each runs the pod's command, the agent answers, the worker marks the pods and they turn Ready", async () => {
    const pods = await Promise.all(["qemu-a", "qemu-b"].map((name) => core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod(name) })));
    const ready = await waitFor(
      async () => {
        const current = await Promise.all(pods.map((p) => core.readNamespacedPod({ name: p.metadata!.name!, namespace: NAMESPACE })));
        return current.every((pod) => vmReadyByWorker(pod) && condition(pod, "Ready") === "True") && current;
      },
      { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 500, message: "both pods VM-ready and Ready" },
    );
    const vms = await podVMs();
    assert.deepEqual(vms.map((vm) => vm.tags[TAG.podUid]).sort(), ready.map((pod) => pod.metadata!.uid).sort());
    for (const vm of vms) {
      assert.equal(vm.ready, true);
      assert.equal(vm.instanceType, "small");
      assert.equal((await agentHealth(vm.agentEndpoint!)).instance_id, vm.id);
      const log = join(peerpods.stateDir, "qemu", vm.id, "workload.log");
      await waitFor(async () => (await readFile(log, "utf8").catch(() => "")).includes("hi"), { timeoutMs: 30_000, message: `the pod's command to run in ${vm.id}` });
    }
  });

  it("deleting the pods deletes their VMs and leaves no qemu process", async () => {
    await Promise.all(["qemu-a", "qemu-b"].map((name) => core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 })));
    await waitFor(async () => (await podVMs()).length === 0 && (await core.listNamespacedPod({ namespace: NAMESPACE })).items.length === 0, {
      timeoutMs: 60_000,
      intervalMs: 500,
      message: "no VM and no pod left",
    });
    await waitFor(async () => (await processesMentioning(`${peerpods.stateDir}/qemu/`)).length === 0, { timeoutMs: 20_000, message: "no qemu process of a pod VM" });
  });
});
