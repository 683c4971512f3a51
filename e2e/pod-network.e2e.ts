/**
 * The pod network of peer pods on the real node: the pod IP that CNI gave the pod on the node is
 * served from its qemu VM through a VXLAN tunnel (the hypervisor part's peerpods-podnet on the node,
 * the agent's SetupNetwork in the VM), so runc pods and other peer pods reach it and it reaches them.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api, type CoreV1Event, type V1Pod } from "@kubernetes/client-node";
import { RECORD_FILE } from "../src/hypervisor/layout.js";
import { defaultImageDir, readManifest } from "../src/providers/qemu/image/paths.js";
import { startRealNode, type RealNode } from "./cluster/node/node.js";
import { cluster } from "./setup.js";
import { execInPod } from "./support/exec.js";
import { inNetns, linksIn, type LinkInfo } from "./support/netns.js";
import { trackedTempDir } from "./support/leftovers.js";
import type { Peerpods } from "./support/peerpods.js";
import { ensurePeerpodsRuntimeClass, PEERPODS_RUNTIME_CLASS, peerpodsContainerd, startNodeHypervisor } from "./support/peerpods-node.js";
import { processesMentioning } from "./support/processes.js";
import { createNamespace, removeNamespaceNow } from "./support/suite.js";
import { waitFor } from "./support/wait.js";

const NAMESPACE = "pod-network-e2e";
const BOOT_TIMEOUT_MS = 180_000;
const POLICY = { instanceTypes: [{ name: "small", vcpus: 1, memoryMiB: 256 }], provider: { name: "qemu", qemu: { maxVMs: 3 } } };
/** busybox httpd serving `page` on 8080 from /www. */
const serve = (page: string): string => `mkdir -p /www && echo "${page}" > /www/index.html && exec httpd -f -p 8080 -h /www`;

/** The host's network namespace: the one nsenter itself runs in. */
const HOST_NETNS = "/proc/self/ns/net";
const links = (netns = HOST_NETNS): Promise<LinkInfo[]> => linksIn(netns);

describe("pod network: a peer pod's IP lives in its VM (real node, qemu VPC, VXLAN)", function () {
  this.timeout(BOOT_TIMEOUT_MS);
  let dir: string;
  let node: RealNode;
  let peerpods: Peerpods;
  let core: CoreV1Api;
  let kernel: string;

  const pod = (name: string, script: string, peer: boolean): V1Pod => ({
    metadata: { name, namespace: NAMESPACE },
    spec: {
      ...(peer ? { runtimeClassName: PEERPODS_RUNTIME_CLASS } : {}),
      nodeName: node.name,
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script] }],
    },
  });
  /** Creates the pod and resolves with its IP once its container runs. */
  const running = async (body: V1Pod): Promise<string> => {
    const name = body.metadata!.name!;
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    return waitFor(
      async () => {
        const status = (await core.readNamespacedPod({ name, namespace: NAMESPACE })).status;
        return status?.containerStatuses?.[0]?.state?.running && status.podIP ? status.podIP : undefined;
      },
      { timeoutMs: BOOT_TIMEOUT_MS / 2, message: `pod ${name} to run` },
    );
  };
  const exec = async (name: string, command: string): Promise<string> => {
    const result = await execInPod(cluster().kc, NAMESPACE, name, "app", ["sh", "-c", command], { timeoutMs: 30_000 });
    assert.equal(result.status.status, "Success", `${command} in ${name}: ${result.stderr} ${JSON.stringify(result.status)}`);
    return result.stdout;
  };
  /**
   * The page at ip:8080, fetched in pod `from` until it answers (the server in a just-started pod may
   * not listen yet); a failure says what the tunnel's ends look like. HTTP by hand with nc: the
   * static busybox's wget segfaults in these images, on any address.
   */
  const fetchIn = (from: string, ip: string): Promise<string> =>
    waitFor(async () => (await execInPod(cluster().kc, NAMESPACE, from, "app", ["sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} 8080 | sed '1,/^\\r$/d'`], { timeoutMs: 30_000 })).stdout || undefined, {
      timeoutMs: 60_000,
      intervalMs: 500,
      message: `${ip}:8080 to answer in pod ${from}`,
    }).catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}\n${await tunnelDiagnostics()}`);
    });
  /** The peer pods' interfaces and counters on the node (pod netns: links, tc) and in their VMs (exec: links, addresses, routes). */
  const tunnelDiagnostics = async (): Promise<string> => {
    const out = (netns: string, ...command: string[]): Promise<string> => inNetns(netns, ...command).catch((error: Error) => error.message);
    const lines: string[] = [];
    for (const name of ["web", "web2"]) {
      const sandbox = await sandboxOf(name).catch(() => undefined);
      if (!sandbox) continue;
      lines.push(`--- ${name} on the node (${sandbox.netns}, ${JSON.stringify(sandbox.network)})`, await out(sandbox.netns, "ip", "-d", "-s", "link"));
      lines.push(await out(sandbox.netns, "tc", "-s", "filter", "show", "dev", "eth0", "ingress"));
      const inVm = await execInPod(cluster().kc, NAMESPACE, name, "app", ["sh", "-c", "ip -d -s link; ip addr; ip route; ip neigh"], { timeoutMs: 20_000 }).catch((e: Error) => ({ stdout: e.message }));
      lines.push(`--- ${name} in its VM`, inVm.stdout);
    }
    lines.push("--- host", await out(HOST_NETNS, "ip", "-s", "link"));
    return lines.join("\n");
  };
  const deletePod = async (name: string): Promise<void> => {
    await core.deleteNamespacedPod({ name, namespace: NAMESPACE });
    await waitFor(async () => !(await core.listNamespacedPod({ namespace: NAMESPACE })).items.some((p) => p.metadata?.name === name), { timeoutMs: 60_000, message: `pod ${name} to be gone` });
  };
  /** The hypervisor part's record of the pod's sandbox: its VM and the pod's network namespace on the node. */
  const sandboxOf = async (name: string): Promise<{ instanceId: string; netns: string; network?: { state: string; vni?: number; vmIp?: string } }> => {
    const podsDir = join(dir, "pods");
    const records = await Promise.all((await readdir(podsDir)).map((id) => readFile(join(podsDir, id, RECORD_FILE), "utf8").catch(() => "{}")));
    const found = records.map((text) => JSON.parse(text) as { pod?: string; instanceId: string; netns: string }).find((record) => record.pod === `${NAMESPACE}/${name}`);
    assert.ok(found?.netns, `a sandbox record with a network namespace for pod ${name}`);
    return found;
  };
  const eventsOf = async (name: string): Promise<CoreV1Event[]> => (await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: `involvedObject.name=${name}` })).items;

  before(async function () {
    this.timeout(BOOT_TIMEOUT_MS);
    kernel = (await readManifest(defaultImageDir()))!.kernelRelease;
    dir = trackedTempDir("pp-net-");
    await writeFile(join(dir, "policy.json"), JSON.stringify(POLICY));
    peerpods = await startNodeHypervisor(cluster().kubeconfigPath, dir, "pod-network-e2e");
    node = await startRealNode(cluster(), { containerd: await peerpodsContainerd(join(dir, "hypervisor.sock")) });
    core = cluster().kc.makeApiClient(CoreV1Api);
    await createNamespace(core, NAMESPACE);
    await ensurePeerpodsRuntimeClass(cluster().kc);
  });

  after(async function () {
    this.timeout(60_000);
    if (core) await removeNamespaceNow(core, NAMESPACE);
    await node?.stop();
    if (peerpods) await peerpods.stop();
    assert.deepEqual(node?.leftovers() ?? [], [], "the node left nothing on the host");
    assert.deepEqual(await processesMentioning(`${dir}/`), [], "no qemu process left");
    const ours = (await links()).filter((link) => ["vxlan", "tun"].includes(link.linkinfo?.info_kind ?? "") || link.ifalias?.includes(`${dir}/`));
    assert.deepEqual(ours.map((link) => link.ifname), [], "no VXLAN device, tap or VPC bridge left on the host");
  });

  let webIp: string;
  let clientIp: string;

  it("a runc client pod fetches the page busybox httpd serves from the peer pod's VM at the pod IP", async () => {
    clientIp = await running(pod("client", serve("client page"), false));
    webIp = await running(pod("web", serve(`web page from $(uname -r)`), true));
    assert.notEqual(webIp, clientIp);
    const page = await fetchIn("client", webIp);
    assert.equal(page, `web page from ${kernel}\n`, "served from the VM's kernel, so by the peer pod's process in its VM");
    const sandbox = await sandboxOf("web");
    assert.equal(sandbox.network?.state, "connected");
    const events = (await eventsOf("web")).filter((event) => event.reason === "PodNetwork");
    assert.equal(events.length, 1, "one PodNetwork Event");
    assert.match(events[0]!.message ?? "", new RegExp(`pod IP ${webIp.replaceAll(".", "\\.")} is served by VM ${sandbox.instanceId}`));
  });

  it("the peer pod fetches from the client pod's IP, through the tunnel back to the node", async () => {
    assert.equal(await fetchIn("web", clientIp), "client page\n");
    const address = await exec("web", "ip -4 -o addr show dev eth0");
    assert.match(address, new RegExp(`inet ${webIp.replaceAll(".", "\\.")}/`), "the pod IP is on the VM-side eth0");
  });

  it("two peer pods reach each other by pod IP", async () => {
    const otherIp = await running(pod("web2", serve("second peer pod"), true));
    assert.equal(await fetchIn("web", otherIp), "second peer pod\n");
    assert.equal(await fetchIn("web2", webIp), `web page from ${kernel}\n`);
    await deletePod("web2");
  });

  it("deleting the peer pod leaves no VXLAN device, tc filter, tap or netns on the node and deletes the VM", async () => {
    const { instanceId, netns } = await sandboxOf("web");
    const inPod = await links(netns);
    const vxlan = inPod.find((link) => link.linkinfo?.info_kind === "vxlan");
    assert.ok(vxlan, `a VXLAN device in the pod's namespace: ${inPod.map((link) => link.ifname).join(", ")}`);
    const filters = await inNetns(netns, "tc", "filter", "show", "dev", "eth0", "ingress");
    assert.match(filters, new RegExp(`mirred \\(Egress Redirect to device ${vxlan.ifname}\\)`), "eth0's ingress goes to the tunnel");
    const tap = (await links()).filter((link) => link.linkinfo?.info_kind === "tun");
    assert.ok(tap.length >= 1, "the VM's tap on the host");
    await deletePod("web");
    await waitFor(async () => (await processesMentioning(instanceId)).length === 0, { timeoutMs: 30_000, message: `VM ${instanceId} to stop` });
    assert.equal(existsSync(netns), false, "the pod's network namespace is gone");
    assert.deepEqual((await links()).filter((link) => ["vxlan", "tun"].includes(link.linkinfo?.info_kind ?? "")).map((link) => link.ifname), [], "no VXLAN device or tap on the host");
    await deletePod("client");
  });
});
