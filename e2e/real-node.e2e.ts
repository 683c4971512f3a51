import assert from "node:assert/strict";
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { startRealNode, type RealNode } from "./cluster/node/node.js";
import { CONTAINERD } from "./cluster/node/paths.js";
import { KUBERNETES_VERSION } from "./cluster/paths.js";
import { cluster } from "./setup.js";
import { execInPod } from "./support/exec.js";
import { createNamespace } from "./support/suite.js";
import { waitFor } from "./support/wait.js";

const NAMESPACE = "real-node-e2e";
const OTHER_NODE = "real-node-e2e-kwok";

/** A client that authenticates as the real node's kubelet does. */
function kubeletClient(): CoreV1Api {
  const { server, caFile, nodeCredentials } = cluster();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "local", server, caFile }],
    users: [{ name: "kubelet", token: nodeCredentials.token }],
    contexts: [{ name: "kubelet", cluster: "local", user: "kubelet" }],
    currentContext: "kubelet",
  });
  return kc.makeApiClient(CoreV1Api);
}

const statusOf = (error: unknown): number | undefined => (error as { code?: number }).code;

describe("a real node: kubelet, containerd and runc in the local cluster", function () {
  this.timeout(60_000);
  let core: CoreV1Api;
  let node: RealNode;

  const busybox = (name: string, script: string): V1Pod => ({
    metadata: { name, namespace: NAMESPACE },
    spec: {
      nodeSelector: { "kubernetes.io/hostname": node.name },
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script] }],
    },
  });
  const readPod = (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: NAMESPACE });

  before(async function () {
    this.timeout(120_000);
    core = cluster().kc.makeApiClient(CoreV1Api);
    await createNamespace(core, NAMESPACE);
    node = await startRealNode(cluster());
    console.log(`    real node ${node.name}: kubelet start → Ready and untainted in ${node.readyMs} ms`);
  });

  after(async function () {
    this.timeout(60_000);
    await node?.stop();
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    await core.deleteNode({ name: OTHER_NODE }).catch(() => undefined);
  });

  it("registers as system:node:NAME with the versions built here, and its credentials reach only its own node", async () => {
    const registered = await core.readNode({ name: node.name });
    assert.equal(registered.status?.nodeInfo?.kubeletVersion, KUBERNETES_VERSION);
    assert.equal(registered.status?.nodeInfo?.containerRuntimeVersion, `containerd://${CONTAINERD.version.slice(1)}`);
    assert.ok(registered.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));

    const kubelet = kubeletClient();
    assert.equal((await kubelet.readNode({ name: node.name })).metadata?.name, node.name);
    // the Node authorizer: no secret that no pod of this node mounts
    await assert.rejects(kubelet.listSecretForAllNamespaces(), (error) => statusOf(error) === 403);
    // NodeRestriction: a kubelet changes its own Node only
    await cluster().addNodes([{ name: OTHER_NODE }]);
    const patch = { metadata: { labels: { "example.com/taken-over": "yes" } } };
    await assert.rejects(
      kubelet.patchNode({ name: OTHER_NODE, body: patch }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch)),
      (error) => statusOf(error) === 403 && /is not allowed to modify node/.test(String((error as Error).message)),
    );
  });

  it("runs a busybox pod with runc: Running, its log through pods/log, exec through pods/exec, and delete removes its containers", async () => {
    const created = Date.now();
    await core.createNamespacedPod({ namespace: NAMESPACE, body: busybox("hello", "echo hello from runc; sleep 3600") });
    const running = await waitFor(async () => ((await readPod("hello")).status?.phase === "Running" ? readPod("hello") : undefined), {
      timeoutMs: 30_000,
      intervalMs: 50,
      message: "pod hello to run",
    });
    console.log(`    busybox pod create → Running in ${Date.now() - created} ms`);
    assert.equal(running.spec?.nodeName, node.name);
    const containerId = running.status?.containerStatuses?.[0]?.containerID?.replace("containerd://", "") ?? "";
    const info = JSON.parse(await node.ctr(["containers", "info", containerId])) as { Runtime: { Name: string } };
    assert.equal(info.Runtime.Name, "io.containerd.runc.v2");

    assert.equal(node.podInterfaces().length, 1, "the pod's veth is on the node's bridge");
    const log = await waitFor(async () => (await core.readNamespacedPodLog({ name: "hello", namespace: NAMESPACE, container: "app" })) || undefined, { message: "the pod's log" });
    assert.equal(log, "hello from runc\n");

    const exec = await execInPod(cluster().kc, NAMESPACE, "hello", "app", ["sh", "-c", "echo $((6 * 7)); hostname"]);
    assert.equal(exec.status.status, "Success");
    assert.equal(exec.stdout, "42\nhello\n");
    const failing = await execInPod(cluster().kc, NAMESPACE, "hello", "app", ["sh", "-c", "echo oops >&2; exit 3"]);
    assert.equal(failing.stderr, "oops\n");
    assert.equal(failing.status.details?.causes?.find((cause) => cause.reason === "ExitCode")?.message, "3");

    await core.deleteNamespacedPod({ name: "hello", namespace: NAMESPACE });
    await waitFor(() => readPod("hello").then(() => false, (error: unknown) => statusOf(error) === 404), { timeoutMs: 30_000, message: "pod hello to be gone" });
    // the kubelet stops the sandbox (its network torn down by CNI) at once; its garbage collector removes the stopped containers later
    await waitFor(async () => (await node.ctr(["tasks", "list", "--quiet"])).trim() === "" && node.podInterfaces().length === 0, {
      timeoutMs: 20_000,
      message: "the pod's processes and its veth to be gone",
    });
  });

  it("stops leaving no process, mount, network namespace, interface, cgroup, changed sysctl or folder behind", async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: busybox("left-running", "sleep 3600") });
    await waitFor(async () => (await readPod("left-running")).status?.phase === "Running", { timeoutMs: 30_000, message: "pod left-running to run" });
    const swept = await node.stop();
    assert.ok(swept.some((line) => line.startsWith("deleted interface")), `the bridge was there to delete: ${swept.join("; ")}`);
    assert.deepEqual(node.leftovers(), []);
    await assert.rejects(core.readNode({ name: node.name }), (error) => statusOf(error) === 404);
  });
});
