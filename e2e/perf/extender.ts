/**
 * `npm run perf:extender`: cost of one scheduler-extender call. The extender's state is fed the way its
 * informers feed it (upsertNode/upsertPod with whole objects): 5,000 nodes and 10,000 bound peer pods.
 * Each call goes through the real route handler (body read, JSON parse, validation, decision,
 * serialisation, metrics); TLS and HTTP framing are left out, so the numbers are the extender's own.
 * Forms: NodeNames (nodeCacheCapable) with 5,000 nodes, full Nodes with 500 node objects.
 * Also: heap held by the extender's caches (run with --expose-gc for exact numbers).
 */
import type { IncomingMessage } from "node:http";
import { loadavg } from "node:os";
import { Readable } from "node:stream";
import { performance } from "node:perf_hooks";
import { extenderRoutes } from "../../src/extender/route.js";
import { SchedulingState } from "../../src/extender/state.js";
import type { FastRoute } from "../../src/http/server.js";
import { ANNOTATION } from "../../src/kube/annotations.js";
import { silentLogger } from "../../src/log/logger.js";
import { compilePolicy } from "../../src/policy/compiled.js";
import { parsePolicy } from "../../src/policy/schema.js";
import { realisticNode } from "./fixtures/node.js";
import { realisticPod } from "./fixtures/pod.js";
import { median, percentile, printTable, writeResults, type Row } from "./lib/report.js";

const NODES = Number(process.env.NODES ?? 5000);
const FULL_NODES = Number(process.env.FULL_NODES ?? 500);
const PODS = Number(process.env.PODS ?? 10_000);
const CALLS = Number(process.env.CALLS ?? 2000);
const WARMUP = 200;
const ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"];
const VM_RESOURCE = "kata.peerpods.io/vm";

const nodeName = (i: number): string => `node-${String(i).padStart(5, "0")}`;

/** A peer pod as the scheduler sends it: mutated by the webhook, not yet bound. */
function pendingPeerPod(i: number): Record<string, unknown> {
  const pod = realisticPod(i) as { metadata: Record<string, unknown>; spec: { containers: { resources: unknown }[] } };
  pod.metadata.name = `shop-frontend-${i}`;
  pod.metadata.uid = `pending-${i}`;
  pod.metadata.annotations = { ...(pod.metadata.annotations as object), [ANNOTATION.instanceType]: "medium" };
  for (const [index, container] of pod.spec.containers.entries()) {
    container.resources = index === 0 ? { requests: { [VM_RESOURCE]: "1" }, limits: { [VM_RESOURCE]: "1" } } : {};
  }
  return pod;
}

function boundPeerPod(i: number): Record<string, unknown> {
  const pod = pendingPeerPod(i) as { metadata: Record<string, unknown>; spec: Record<string, unknown>; status?: unknown };
  pod.metadata.uid = `bound-${i}`;
  pod.spec.nodeName = nodeName(i % NODES);
  pod.status = { phase: "Running", podIP: "10.128.0.9", conditions: [{ type: "Ready", status: "True" }] };
  return pod;
}

const heapMiB = (): number => {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

function request(body: Buffer): IncomingMessage {
  const req = Readable.from([body]) as unknown as IncomingMessage;
  req.headers = { "content-type": "application/json", "content-length": String(body.length) };
  return req;
}

/** Wall time of each call, and the CPU time of all of them (what the code costs whatever else runs on the machine). */
async function timeCalls(route: FastRoute, bodies: Buffer[]): Promise<{ times: number[]; cpuMicros: number }> {
  const times: number[] = [];
  let cpu = process.cpuUsage();
  for (let i = 0; i < WARMUP + CALLS; i++) {
    if (i === WARMUP) cpu = process.cpuUsage();
    const body = bodies[i % bodies.length]!;
    const started = performance.now();
    const answer = await route(request(body));
    const elapsed = performance.now() - started;
    if (i === 0 && !answer.includes("Host") && !answer.includes("NodeNames")) throw new Error(`unexpected answer: ${answer.slice(0, 200)}`);
    if (i >= WARMUP) times.push(elapsed);
  }
  const used = process.cpuUsage(cpu);
  return { times, cpuMicros: used.user + used.system };
}

async function main(): Promise<void> {
  if (!globalThis.gc) console.warn("run with node --expose-gc for exact cache memory (npm run perf:extender does)");
  const parsed = parsePolicy({ nodes: { vmsPerNode: 10 }, limits: { maxVMs: 100_000 } });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const policy = compilePolicy(parsed.spec, 1);
  const state = new SchedulingState(policy);

  const before = heapMiB();
  const nodes = Array.from({ length: NODES }, (_, i) => realisticNode(nodeName(i), ZONES[i % ZONES.length]!));
  const pods = Array.from({ length: PODS }, (_, i) => boundPeerPod(i));
  const objects = heapMiB();
  for (const node of nodes) state.upsertNode(node);
  for (const pod of pods) state.upsertPod(pod);
  const filled = heapMiB();
  const memory = { objectsMiB: Number((objects - before).toFixed(1)), stateMiB: Number((filled - objects).toFixed(1)) };

  const routes = extenderRoutes({ state, log: silentLogger, maxBodyBytes: 64 * 2 ** 20 });
  const names = nodes.map((node) => (node.metadata as { name: string }).name);
  // distinct pods so reservations accumulate as they do under a real scheduler
  const nameBodies = Array.from({ length: 64 }, (_, i) => Buffer.from(JSON.stringify({ Pod: pendingPeerPod(i), NodeNames: names })));
  const fullBodies = Array.from({ length: 16 }, (_, i) => Buffer.from(JSON.stringify({ Pod: pendingPeerPod(i), Nodes: { items: nodes.slice(0, FULL_NODES) } })));

  const load = loadavg()[0]!;
  const rows: Row[] = [];
  const cases: [string, string, number, Buffer[]][] = [
    ["filter", "NodeNames", NODES, nameBodies],
    ["prioritize", "NodeNames", NODES, nameBodies],
    ["filter", "Nodes", FULL_NODES, fullBodies],
    ["prioritize", "Nodes", FULL_NODES, fullBodies],
  ];
  for (const [verb, form, count, bodies] of cases) {
    const { times, cpuMicros } = await timeCalls(routes[`/${verb}`]!, bodies);
    rows.push({
      verb,
      form,
      nodes: count,
      "body KiB": Math.round(bodies[0]!.length / 1024),
      calls: CALLS,
      "p50 ms": Number(median(times).toFixed(2)),
      "p99 ms": Number(percentile(times, 99).toFixed(2)),
      "cpu ms/call": Number((cpuMicros / 1000 / CALLS).toFixed(2)),
      "calls/s per core": Math.round(1e6 / (cpuMicros / CALLS)),
    });
  }
  printTable(`extender: ${NODES} nodes and ${PODS} bound peer pods in the caches; one call at a time (load average ${load.toFixed(1)})`, rows);
  console.log(`cache memory: ${memory.stateMiB} MiB for the extender's state (indexes over the objects), ${memory.objectsMiB} MiB for the ${NODES} node and ${PODS} pod objects an informer holds`);
  await writeResults("extender", { nodes: NODES, fullNodes: FULL_NODES, pods: PODS, loadAverage: load, memory, rows, targets: { p99MsNodeNames: 5 } });
}

await main();
