import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { AuthorizationV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { ANNOTATION } from "../src/kube/annotations.js";
import { withAgent } from "../src/runtime/agent-client.js";
import { pino } from "pino";
import { createProvider } from "../src/providers/factory.js";
import { TAG, type Instance, type Provider, type Tags } from "../src/providers/types.js";
import { defaultImageDir } from "../src/providers/qemu/image/paths.js";
import { buildRuntime } from "../src/runtime/build.js";
import type { NetworkState } from "../src/hypervisor/sandbox-network.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../src/kube/peerpod.js";
import { cluster } from "./setup.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR, MANIFESTS_DIR, withWebhookUrl, removeWebhookConfigs } from "./support/manifests.js";
import { agentctl } from "./support/agentctl.js";
import { busyboxRootfs } from "./support/busybox.js";
import { inNetns, linksIn, makePodNetns, type LinkInfo } from "./support/netns.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { trackedTempDir } from "./support/leftovers.js";
import { processesMentioning } from "./support/processes.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";
import { buildPeer, shimAnnotations, TtrpcPeer } from "./ttrpc-peer/peer.js";

const NAMESPACE = "hv-e2e";
const CLUSTER_ID = "hv-e2e";
const NODE = "hv-node-1";
const QEMU = { maxVMs: 4 };
const POLICY = {
  instanceTypes: [{ name: "small", vcpus: 1, memoryMiB: 256 }],
  provider: { name: "qemu", qemu: QEMU },
};
const BOOT_TIMEOUT_MS = 180_000;

/** A peer pod already bound to the node (as the scheduler would), so the worker starts its VM at once. */
const warmPod: V1Pod = {
  metadata: { name: "hv-warm", namespace: NAMESPACE },
  spec: { runtimeClassName: "kata-remote", nodeName: NODE, containers: [{ name: "app", image: "busybox" }] },
};

/** A Kata sandbox id: 64 hex characters. */
const sandboxId = (): string => randomBytes(32).toString("hex");

/** Everything a TCP server at host:port sends before it closes the connection. */
const readTcp = (host: string, port: number, timeoutMs = 5000): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host, port, timeout: timeoutMs });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("timeout", () => socket.destroy(new Error(`no end from ${host}:${port} after ${timeoutMs} ms`)));
    socket.on("error", reject);
    socket.on("end", () => resolve(Buffer.concat(chunks).toString()));
  });

describe("Kata remote hypervisor: containerd's ttrpc client against peerpods (hypervisor + worker, qemu VMs)", function () {
  this.timeout(BOOT_TIMEOUT_MS * 2);
  let admin: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let dir: string;
  let podsDir: string;
  let peerpods: Peerpods;
  let peer: TtrpcPeer;
  let provider: Provider;
  let webhookConfig: KubernetesObject[] = [];
  const timings: { coldMs?: number; warmMs?: number } = {};

  const liveVMs = async (tags: Tags): Promise<Instance[]> =>
    (await provider.list({ [TAG.cluster]: CLUSTER_ID, ...tags })).filter((i) => i.state === "pending" || i.state === "running");
  const sandboxRecord = async (id: string): Promise<{ instanceId: string; netns?: string; network?: NetworkState }> =>
    JSON.parse(await readFile(join(podsDir, id, "vm.json"), "utf8")) as { instanceId: string; netns?: string; network?: NetworkState };
  const createAndStart = (id: string, annotations: Record<string, string>): Promise<{ socket: string; ms: number }> => peer.createAndStart(id, annotations, BOOT_TIMEOUT_MS / 1000);
  /** The sandbox's VM runs as a process here (so the check that none is left after StopVM means something). */
  const assertVmProcess = async (id: string): Promise<void> => {
    const { instanceId } = await sandboxRecord(id);
    assert.notEqual((await processesMentioning(instanceId)).length, 0, `a qemu process of VM ${instanceId} runs`);
  };
  /** StopVM, then: VM gone, socket and folder gone, no qemu process of it left. */
  const stopAndCheck = async (id: string, socket: string): Promise<void> => {
    const { instanceId } = await sandboxRecord(id);
    const stopped = await peer.stopVM(id);
    assert.equal(stopped.code, undefined, `StopVM failed: ${stopped.code} ${stopped.message}`);
    assert.equal(await provider.get(instanceId).then((i) => (i && i.state !== "terminated" ? i.state : undefined)), undefined, "the VM is gone");
    await assert.rejects(stat(socket), { code: "ENOENT" });
    await assert.rejects(stat(join(podsDir, id)), { code: "ENOENT" });
    await waitFor(async () => (await processesMentioning(instanceId)).length === 0, { timeoutMs: 20_000, message: `no process of VM ${instanceId}` });
  };

  before(async function () {
    this.timeout(600_000);
    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    const binary = await buildPeer();
    const manifests = await loadManifests(LOCAL_OVERLAY_DIR);
    webhookConfig = manifests.filter((o) => o.kind === "MutatingWebhookConfiguration");
    await applyObjects(admin, manifests.filter((o) => o.kind !== "MutatingWebhookConfiguration"));
    // The node DaemonSet's objects must be accepted by a real apiserver (no node here carries its selector's label).
    await applyObjects(admin, await loadManifests(join(MANIFESTS_DIR, "daemonset")));
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), { message: "the default ServiceAccount" });
    await cluster().addNodes([{ name: NODE }]);

    // Short: the sandbox sockets (64-character ids) must stay under the 108-byte unix socket path limit.
    dir = trackedTempDir("hv-e2e-");
    podsDir = join(dir, "pods");
    const policyFile = join(dir, "policy.json");
    await writeFile(policyFile, JSON.stringify(POLICY));
    const kubeconfig = await serviceAccountKubeconfig(admin, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    const socket = join(dir, "hypervisor.sock");
    peerpods = await startPeerpods({
      kubeconfig,
      args: ["--parts=webhook,hypervisor,worker", `--policy-file=${policyFile}`, `--cluster-id=${CLUSTER_ID}`, "--no-leader-elect", `--hypervisor-socket=${socket}`, `--pods-dir=${podsDir}`],
    });
    // The peer pod goes through this run's webhook, as on a cluster (a peer pod is refused while no webhook answers).
    await applyObjects(admin, withWebhookUrl(webhookConfig, peerpods.webhookUrl, peerpods.caBundle));
    await waitFor(
      async () => (await core.createNamespacedPod({ namespace: NAMESPACE, body: warmPod, dryRun: "All" })).metadata?.annotations?.[ANNOTATION.instanceType] === "small",
      { timeoutMs: 20_000, message: "the apiserver to call the webhook" },
    );
    peer = new TtrpcPeer(binary, socket);
    provider = await createProvider({ name: "qemu", qemu: QEMU }, { clusterId: CLUSTER_ID, stateDir: peerpods.stateDir, log: pino({ level: "silent" }) });
  });

  after(async function () {
    this.timeout(120_000);
    for (const instance of provider ? await provider.list({ [TAG.cluster]: CLUSTER_ID }).catch(() => []) : []) await provider.delete(instance.id).catch(() => undefined);
    await peerpods?.kill();
    // The suite's provider object shares the part's state folder: closing it takes the VPC bridge down with the last VM.
    await provider?.close();
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    await core.deleteNode({ name: NODE }).catch(() => undefined);
    await removeWebhookConfigs(admin, webhookConfig);
    if (timings.coldMs !== undefined) console.log(`    CreateVM → agent reachable: cold ${timings.coldMs} ms, VM started by the worker at bind ${timings.warmMs ?? "n/a"} ms`);
  });

  it("the node DaemonSet's ServiceAccount may read what CreateVM needs, and nothing it must not", async () => {
    const authz = admin.makeApiClient(AuthorizationV1Api);
    const may = async (verb: string, resource: string, group = ""): Promise<boolean> => {
      const review = await authz.createSubjectAccessReview({
        body: { spec: { user: "system:serviceaccount:peerpods-system:peerpods-hypervisor", resourceAttributes: { verb, resource, group, namespace: NAMESPACE } } },
      });
      return review.status?.allowed === true;
    };
    for (const [verb, resource, group] of [["list", "pods"], ["get", "peerpods", "peerpods.io"], ["watch", "peerpodpolicies", "peerpods.io"], ["create", "events"]] as const) {
      assert.equal(await may(verb, resource, group), true, `${verb} ${resource}`);
    }
    for (const [verb, resource, group] of [["delete", "pods"], ["patch", "peerpods", "peerpods.io"], ["get", "secrets"]] as const) {
      assert.equal(await may(verb, resource, group), false, `not ${verb} ${resource}`);
    }
  });

  it("answers Version, and an unknown method with UNIMPLEMENTED", async () => {
    const { version } = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal((await peer.version("0.0.1")).version, version);
    const unknown = await peer.call(["call", "hypervisor.Hypervisor", "PauseVM"]);
    assert.equal(unknown.code, "Unimplemented");
    assert.match(unknown.message ?? "", /PauseVM/);
    const metrics = await (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`)).text();
    assert.match(metrics, /^peerpods_hypervisor_requests_total\{method="Version",result="ok"\} 1$/m);
    assert.match(metrics, /^peerpods_hypervisor_requests_total\{method="unknown",result="unimplemented"\} 1$/m);
  });

  it("cold: a pod the cluster does not know gets one VM from its annotations; the agent socket reaches the VM's agent; StopVM cleans up", async () => {
    const id = sandboxId();
    const { socket, ms } = await createAndStart(id, shimAnnotations(NAMESPACE, "hv-cold", "small"));
    timings.coldMs = ms;
    assert.ok((await stat(socket)).isSocket(), "the agent socket exists");
    assert.equal(socket, join(podsDir, id, "agent.ttrpc"));

    const again = await peer.createVM(id, shimAnnotations(NAMESPACE, "hv-cold", "small"));
    assert.equal(again.agentSocketPath, socket, "CreateVM is idempotent per sandbox id");
    const vms = await liveVMs({ [TAG.podName]: "hv-cold" });
    assert.equal(vms.length, 1, "one VM for the sandbox");
    assert.equal(vms[0]!.instanceType, "small");

    const health = await withAgent(socket, (agent) => agent.health());
    assert.equal(health.ready, true);
    assert.equal(health.instance_id, vms[0]!.id, "the socket reaches the sandbox VM's agent");

    await assertVmProcess(id);
    await stopAndCheck(id, socket);
    assert.equal((await peer.stopVM(id)).code, undefined, "StopVM again is fine");
  });

  it("warm: a pod whose VM the worker started at bind gets that VM, no second one, faster than a cold boot", async () => {
    const uid = (await core.createNamespacedPod({ namespace: NAMESPACE, body: warmPod })).metadata!.uid!;
    const record = await waitFor(
      async () => {
        const found = (await custom.getNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE, name: "hv-warm" })) as PeerPod;
        return found.status?.phase === "Ready" && found;
      },
      { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 500, message: "the worker to make hv-warm's VM ready" },
    );

    const id = sandboxId();
    const { socket, ms } = await createAndStart(id, shimAnnotations(NAMESPACE, "hv-warm"));
    timings.warmMs = ms;
    assert.equal((await sandboxRecord(id)).instanceId, record.status!.instanceID, "attached to the worker's VM");
    assert.equal((await liveVMs({ [TAG.podUid]: uid })).length, 1, "no second VM");
    assert.equal((await withAgent(socket, (agent) => agent.health())).instance_id, record.status!.instanceID, "the socket reaches that VM's agent");
    assert.ok(timings.coldMs !== undefined && ms < timings.coldMs, `attaching (${ms} ms) is faster than a cold boot (${timings.coldMs} ms)`);

    // The shim's first call on the agent socket, grpc.Health/Check over ttrpc, reaches peerpods-agent
    // (the local image has no kata-agent): it fails at once, every time, saying why.
    const agentPeer = new TtrpcPeer(peer.binary, socket);
    for (let attempt = 1; attempt <= 2; attempt++) {
      const check = await agentPeer.call(["call", "grpc.Health", "Check"]);
      assert.equal(check.code, "FailedPrecondition", `health check ${attempt} fails`);
      assert.match(check.message ?? "", /runs peerpods-agent .* not kata-agent/);
      assert.ok(check.ms < 5000, `health check ${attempt} fails at once (${check.ms} ms), not after the shim's timeout`);
    }
    // The pod's Events as kubectl describe selects them (by uid too): the worker's and the hypervisor's.
    // The agent answered in ttrpc, so the forwarder saw no foreign protocol.
    const selector = `involvedObject.kind=Pod,involvedObject.name=hv-warm,involvedObject.namespace=${NAMESPACE},involvedObject.uid=${uid}`;
    const events = await waitFor(
      async () => {
        const { items } = await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: selector });
        const reasons = new Set(items.map((e) => e.reason));
        return ["VMReady", "SandboxVM"].every((r) => reasons.has(r)) && items;
      },
      { timeoutMs: 20_000, message: "the pod's Events under kubectl describe's field selector" },
    );
    assert.equal(events.filter((e) => e.reason === "SandboxAgentProtocolMismatch").length, 0);

    await assertVmProcess(id);
    // As on a node: the pod is deleted, then the kubelet stops the sandbox.
    await core.deleteNamespacedPod({ name: "hv-warm", namespace: NAMESPACE, gracePeriodSeconds: 0 });
    await stopAndCheck(id, socket);
    await waitFor(async () => (await liveVMs({ [TAG.podUid]: uid })).length === 0, { timeoutMs: 30_000, message: "no VM left for hv-warm" });
  });

  it("pod network: the shim's network namespace is tied to the VM at StartVM; a container started afterwards answers at the pod IP from the VM; StopVM takes the tunnel out", async () => {
    const ctl = (await buildRuntime()).agentctl;
    const rootfs = await busyboxRootfs(defaultImageDir(), join(dir, "busybox"));
    const netns = await makePodNetns();
    const id = sandboxId();
    const vxlanOf = async (): Promise<LinkInfo | undefined> => (await linksIn(netns.path)).find((link) => link.linkinfo?.info_kind === "vxlan");
    try {
      const { socket } = await peer.createAndStart(id, shimAnnotations(NAMESPACE, "hv-net", "small"), BOOT_TIMEOUT_MS / 1000, netns.path);
      const { instanceId, netns: recorded, network } = await sandboxRecord(id);
      const vmIp = (await provider.get(instanceId))?.privateIp;
      assert.ok(vmIp, "the VM has a private address (the qemu VPC, on as root)");
      assert.equal(recorded, netns.path);
      assert.ok(network?.state === "connected", `the sandbox's network is connected: ${JSON.stringify(network)}`);
      assert.deepEqual([network.podIp, network.vmIp], [netns.podIp, vmIp]);

      const vxlan = await vxlanOf();
      assert.ok(vxlan, "a VXLAN device in the pod's namespace");
      const filters = await inNetns(netns.path, "tc", "filter", "show", "dev", "eth0", "ingress");
      assert.match(filters, new RegExp(`mirred \\(Egress Redirect to device ${vxlan.ifname}\\)`), "eth0's ingress goes to the tunnel");

      // A container created after StartVM joins the VM's pod netns; nothing listens in the node's, so an answer at the pod IP comes from the VM.
      const page = `served in VM ${instanceId}`;
      const ran = await agentctl(ctl, socket, ["run", "-id", "web", "-detach", "-rootfs", rootfs, "--", "sh", "-c", `while true; do echo "${page}" | nc -l -p 8080; done`]);
      assert.equal(ran.code, undefined, `run: ${ran.code} ${ran.message}`);
      const answer = await waitFor(async () => (await readTcp(netns.podIp, 8080)) || undefined, { timeoutMs: 60_000, intervalMs: 500, message: `${netns.podIp}:8080 to answer` }).catch(async (error: Error) => {
        const diagnostics = await Promise.all([inNetns(netns.path, "ip", "-d", "-s", "link"), inNetns(netns.path, "tc", "-s", "filter", "show", "dev", "eth0", "ingress")]);
        throw new Error(`${error.message}\n--- the pod's namespace on the node\n${diagnostics.join("\n")}`);
      });
      assert.equal(answer, `${page}\n`);
      const counters = (await vxlanOf())?.stats64;
      assert.ok((counters?.rx?.bytes ?? 0) > 0 && (counters?.tx?.bytes ?? 0) > 0, `the exchange crossed the tunnel: ${JSON.stringify(counters)}`);
      const metrics = await (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`)).text();
      assert.match(metrics, /^peerpods_pod_network_setups_total\{result="connected"\} 1$/m);

      await stopAndCheck(id, socket);
      assert.equal(await vxlanOf(), undefined, "no VXLAN device left in the pod's namespace");
      assert.doesNotMatch(await inNetns(netns.path, "tc", "qdisc", "show", "dev", "eth0"), /ingress/, "no ingress qdisc (nor its filters) left on eth0");
    } finally {
      await peer.stopVM(id).catch(() => undefined);
      await netns.remove();
    }
  });
});
