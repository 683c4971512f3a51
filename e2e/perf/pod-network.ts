/**
 * `npm run perf:pod-network -- [--starts N]` (root; the real node is one per host, so hold its lock):
 * the pod network of a peer pod (its IP served from its qemu TCG VM through the VXLAN tunnel) against
 * a plain runc pod on the same node, both measured from a runc client pod's network namespace:
 * TCP handshakes, 64-byte round trips on one connection, and throughput (32 MiB to a reader that
 * drops it), each from the client pod; and pod created → serving its port (polled from the node,
 * every 50 ms). To split the cost, SYN → RST round trips to a closed port (the kernel alone answers,
 * no server work): client pod → pod, and node → the peer pod VM's private address, no tunnel. Results go to
 * e2e/perf/results/pod-network.json.
 */
import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { RECORD_FILE } from "../../src/hypervisor/layout.js";
import { startCluster } from "../cluster/cluster.js";
import { startRealNode, type RealNode } from "../cluster/node/node.js";
import { trackedTempDir } from "../support/leftovers.js";
import type { Peerpods } from "../support/peerpods.js";
import { ensurePeerpodsRuntimeClass, PEERPODS_RUNTIME_CLASS, peerpodsContainerd, startNodeHypervisor } from "../support/peerpods-node.js";
import { createNamespace } from "../support/suite.js";
import { waitFor } from "../support/wait.js";
import { percentile, printTable, runBenchmark, writeResults, type Row } from "./lib/report.js";

const run = promisify(execFile);
const { values: flags } = parseArgs({ options: { starts: { type: "string", default: "3" } } });
const STARTS = Number(flags.starts);
const NAMESPACE = "perf-pod-network";
const START_TIMEOUT_MS = 180_000;
const HANDSHAKES = 100;
const ROUND_TRIPS = 200;
const SEND_BYTES = 32 * 1024 * 1024;
const SENDS = 3;
/** The host's network namespace (the one nsenter itself runs in), and a port nothing listens on in pods or VMs. */
const HOST_NETNS = "/proc/self/ns/net";
const CLOSED_PORT = 9;
const PROBE = fileURLToPath(new URL("./lib/tcp-probe.ts", import.meta.url));
const POLICY = { instanceTypes: [{ name: "small", vcpus: 1, memoryMiB: 256 }], provider: { name: "qemu", qemu: { maxVMs: 2 } } };
/** httpd on 8080, an echo server on 7, and on 5001 a reader that drops what it gets and closes at its end. */
const SERVERS = "mkdir -p /www && echo ok > /www/index.html && httpd -p 8080 -h /www && printf '#!/bin/sh\\nexec cat > /dev/null\\n' > /drop && chmod +x /drop && (nc -ll -p 7 -e cat &) && exec nc -ll -p 5001 -e /drop";

type Kind = "runc" | "peerpods";

function benchPod(name: string, kind: Kind, nodeName: string, command: string): V1Pod {
  return {
    metadata: { name, namespace: NAMESPACE },
    spec: {
      ...(kind === "peerpods" ? { runtimeClassName: PEERPODS_RUNTIME_CLASS } : {}),
      nodeName,
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", command] }],
    },
  };
}

/** One HTTP GET of `/` at ip:8080 from here; true when it answers "ok". */
function answers(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port: 8080, timeout: 1000 });
    let text = "";
    socket.on("connect", () => socket.end("GET / HTTP/1.0\r\n\r\n"));
    socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
    socket.on("close", () => resolve(text.endsWith("\r\n\r\nok\n")));
    socket.on("timeout", () => socket.destroy());
    socket.on("error", () => resolve(false));
  });
}

interface Bench {
  core: CoreV1Api;
  node: RealNode;
}

/** Creates the pod; resolves with its IP and created → serving its port, in ms. */
async function startServing(bench: Bench, name: string, kind: Kind): Promise<{ ip: string; ms: number }> {
  const created = performance.now();
  await bench.core.createNamespacedPod({ namespace: NAMESPACE, body: benchPod(name, kind, bench.node.name, SERVERS) });
  const ip = await waitFor(async () => (await bench.core.readNamespacedPod({ name, namespace: NAMESPACE })).status?.podIP, { timeoutMs: START_TIMEOUT_MS, intervalMs: 50, message: `${name}'s IP` });
  await waitFor(() => answers(ip), { timeoutMs: START_TIMEOUT_MS, intervalMs: 50, message: `${name} serving on ${ip}:8080` });
  return { ip, ms: Math.round(performance.now() - created) };
}

async function deletePod(bench: Bench, name: string): Promise<void> {
  await bench.core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 1 });
  await waitFor(async () => !(await bench.core.listNamespacedPod({ namespace: NAMESPACE })).items.some((p) => p.metadata?.name === name), { timeoutMs: 60_000, message: `${name} gone` });
}

/** The network namespace of the pod's container, as /proc/PID/ns/net. */
async function netnsOf(bench: Bench, name: string): Promise<string> {
  const containerId = await waitFor(
    async () => {
      const container = (await bench.core.readNamespacedPod({ name, namespace: NAMESPACE })).status?.containerStatuses?.[0];
      return container?.state?.running ? container.containerID : undefined;
    },
    { timeoutMs: 60_000, message: `${name} running` },
  );
  const id = containerId.replace(/^containerd:\/\//, "");
  const line = (await bench.node.ctr(["task", "ls"])).split("\n").find((l) => l.startsWith(`${id} `));
  const pid = line?.trim().split(/\s+/)[1];
  if (!pid) throw new Error(`no containerd task ${id} for pod ${name}`);
  return `/proc/${pid}/ns/net`;
}

/** The VM's private address, from the hypervisor part's record of the pod's sandbox. */
async function vmIpOf(podsDir: string, pod: string): Promise<string> {
  for (const id of await readdir(podsDir)) {
    const record = JSON.parse(await readFile(join(podsDir, id, RECORD_FILE), "utf8").catch(() => "{}")) as { pod?: string; network?: { vmIp?: string } };
    if (record.pod === `${NAMESPACE}/${pod}` && record.network?.vmIp) return record.network.vmIp;
  }
  throw new Error(`no sandbox record with a connected network for pod ${pod}`);
}

async function probe<T>(netns: string, args: (string | number)[]): Promise<T> {
  const { stdout, stderr } = await run("nsenter", [`--net=${netns}`, process.execPath, "--import", "tsx", PROBE, ...args.map(String)], { timeout: 300_000 });
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new Error(`tcp-probe ${args.join(" ")} printed ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`);
  }
}

interface Network {
  handshakeMs: number[];
  refusedMs: number[];
  roundTripMs: number[];
  sendMs: number[];
}

async function measureNetwork(client: string, ip: string): Promise<Network> {
  const handshakeMs = await probe<number[]>(client, ["connect", ip, 8080, HANDSHAKES]);
  const refusedMs = await probe<number[]>(client, ["refused", ip, CLOSED_PORT, HANDSHAKES]);
  const roundTripMs = await probe<number[]>(client, ["echo", ip, 7, ROUND_TRIPS, 64]);
  const sendMs: number[] = [];
  for (let i = 0; i < SENDS; i++) {
    sendMs.push(await probe<number>(client, ["send", ip, 5001, SEND_BYTES]));
  }
  return { handshakeMs, refusedMs, roundTripMs, sendMs };
}

const mbitPerSecond = (ms: number): number => (SEND_BYTES * 8) / 1e6 / (ms / 1000);

function report(starts: Record<Kind, number[]>, network: Record<Kind, Network>, vmRefusedMs: number[], setupMs: number[]): Row[] {
  const row = (what: string, unit: string, values: Record<Kind, number[]>): Row => {
    const [runc, peer] = [percentile(values.runc, 50), percentile(values.peerpods, 50)];
    return { what, unit, "runc p50": runc, "runc p90": percentile(values.runc, 90), "peer pod p50": peer, "peer pod p90": percentile(values.peerpods, 90), "peer ÷ runc (p50)": peer / runc };
  };
  const throughput = (kind: Kind): number[] => network[kind].sendMs.map(mbitPerSecond);
  const rows = [
    row("TCP connect to httpd, client pod → pod", "ms", { runc: network.runc.handshakeMs, peerpods: network.peerpods.handshakeMs }),
    row("SYN → RST (closed port), client pod → pod", "ms", { runc: network.runc.refusedMs, peerpods: network.peerpods.refusedMs }),
    row("64 B round trip on one connection", "ms", { runc: network.runc.roundTripMs, peerpods: network.peerpods.roundTripMs }),
    row(`throughput (${SEND_BYTES / 1024 / 1024} MiB, ${SENDS} runs)`, "Mbit/s", { runc: throughput("runc"), peerpods: throughput("peerpods") }),
    row(`pod created → serving its port (${STARTS} pods)`, "ms", starts),
    { what: "SYN → RST (closed port), node → the VM's private address (no tunnel)", unit: "ms", "peer pod p50": percentile(vmRefusedMs, 50), "peer pod p90": percentile(vmRefusedMs, 90) },
    { what: `pod network set up in StartVM (tunnel, then SetupNetwork; ${setupMs.length} pods)`, unit: "ms", "peer pod p50": percentile(setupMs, 50), "peer pod p90": percentile(setupMs, 90) },
  ];
  printTable("pod network: client pod → plain runc pod vs → peer pod (qemu TCG VM, VXLAN), same node", rows);
  return rows;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the real node (kubelet, containerd) needs root");
  if (!(STARTS >= 1)) throw new Error(`--starts must be at least 1, got ${flags.starts}`);
  const dir = trackedTempDir("pp-pnet-");
  await writeFile(join(dir, "policy.json"), JSON.stringify(POLICY));
  const cluster = await startCluster();
  let node: RealNode | undefined;
  let peerpods: Peerpods | undefined;
  try {
    peerpods = await startNodeHypervisor(cluster.kubeconfigPath, dir, "perf-pod-network");
    node = await startRealNode(cluster, { containerd: await peerpodsContainerd(join(dir, "hypervisor.sock")) });
    const core = cluster.kc.makeApiClient(CoreV1Api);
    await createNamespace(core, NAMESPACE);
    await ensurePeerpodsRuntimeClass(cluster.kc);
    const bench: Bench = { core, node };
    await core.createNamespacedPod({ namespace: NAMESPACE, body: benchPod("client", "runc", node.name, "sleep 3600") });
    const client = await netnsOf(bench, "client");
    const starts: Record<Kind, number[]> = { runc: [], peerpods: [] };
    const network = {} as Record<Kind, Network>;
    let vmRefusedMs: number[] = [];
    for (const kind of ["runc", "peerpods"] as const) {
      for (let i = 0; i < STARTS; i++) {
        const name = `${kind}-${i}`;
        const { ip, ms } = await startServing(bench, name, kind);
        starts[kind].push(ms);
        console.log(`  ${name} (${ip}): created → serving ${ms} ms`);
        if (i === STARTS - 1) {
          network[kind] = await measureNetwork(client, ip);
          if (kind === "peerpods") vmRefusedMs = await probe<number[]>(HOST_NETNS, ["refused", await vmIpOf(join(dir, "pods"), name), CLOSED_PORT, HANDSHAKES]);
          console.log(`  ${kind}: handshake p50 ${percentile(network[kind].handshakeMs, 50).toFixed(2)} ms, round trip p50 ${percentile(network[kind].roundTripMs, 50).toFixed(2)} ms, ${network[kind].sendMs.map((ms) => mbitPerSecond(ms).toFixed(0)).join("/")} Mbit/s`);
        }
        await deletePod(bench, name);
      }
    }
    const setupMs = peerpods
      .logs()
      .filter((line) => line.msg === "pod network connected")
      .map((line) => Number(line.ms));
    const summary = report(starts, network, vmRefusedMs, setupMs);
    await writeResults("pod-network", { starts: STARTS, handshakes: HANDSHAKES, roundTrips: ROUND_TRIPS, sendBytes: SEND_BYTES, summary, raw: { starts, network, vmRefusedMs, setupMs } });
  } finally {
    await peerpods?.stop();
    const left = (await node?.stop()) ?? [];
    if (left.length) console.log(`the node's stop swept ${left.length} leftovers`);
    await cluster.stop();
  }
}

runBenchmark(main);
