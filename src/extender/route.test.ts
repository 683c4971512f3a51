import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import request from "supertest";
import { healthApp } from "../http/apps.js";
import { startServer, type RunningServer } from "../http/server.js";
import { silentLogger } from "../log/logger.js";
import { registry } from "../metrics/registry.js";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema } from "../policy/schema.js";
import { testCerts } from "../test-support/tls.js";
import { REASON } from "./decide.js";
import { extenderRoutes } from "./route.js";
import { SchedulingState } from "./state.js";

const policy = compilePolicy(policySpecSchema.parse({ nodes: { selector: { matchLabels: { peer: "yes" } }, vmsPerNode: 1 }, limits: { maxVMs: 2 } }), 1);
const node = (name: string, labels: Record<string, string>) => ({ metadata: { name, labels } });
const peerPod = (uid: string) => ({
  metadata: { name: uid, namespace: "team", uid, annotations: { "peerpods.io/instance-type": "small" } },
  spec: { runtimeClassName: "kata-remote", containers: [{ name: "app" }] },
});
const plainPod = { metadata: { name: "web", namespace: "team", uid: "plain" }, spec: { containers: [{ name: "app" }] } };

async function counter(verb: string, result: string): Promise<number> {
  const metric = await registry.getSingleMetric("peerpods_extender_requests_total")!.get();
  return metric.values.find((v) => v.labels.verb === verb && v.labels.result === result)?.value ?? 0;
}

/** peerpods_extender_phase_seconds_total of one verb, by phase, in µs. */
async function phaseMicros(verb: string): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric("peerpods_extender_phase_seconds_total")!.get();
  return Object.fromEntries(metric.values.filter((v) => v.labels.verb === verb).map((v) => [v.labels.phase, Math.round(v.value * 1e6)]));
}

function jsonRequest(body: unknown): IncomingMessage {
  const req = Readable.from([Buffer.from(JSON.stringify(body))]) as unknown as IncomingMessage;
  req.headers = { "content-type": "application/json" };
  return req;
}

describe("extender phase timing", () => {
  it("adds each phase of an answered call to its sum, and nothing for a refused one", async () => {
    let now = 0;
    const routes = extenderRoutes({ state: new SchedulingState(policy), log: silentLogger, maxBodyBytes: 64 * 1024, clock: () => (now += 1) });
    const before = await phaseMicros("prioritize");
    await routes["/prioritize"]!(jsonRequest({ Pod: peerPod("p1"), NodeNames: ["peer-1"] }));
    await assert.rejects(routes["/prioritize"]!(jsonRequest({ Pod: peerPod("p1") })), /needs NodeNames or Nodes/);
    const after = await phaseMicros("prioritize");
    assert.deepEqual(
      Object.fromEntries(Object.entries(after).map(([phase, us]) => [phase, us - (before[phase] ?? 0)])),
      { parse: 1000, decide: 1000, serialise: 1000 },
    );
  });
});

describe("scheduler extender over HTTPS", () => {
  let server: RunningServer;
  let ca: string;
  let url: string;
  let state: SchedulingState;
  let turnedAway: number;

  beforeEach(async () => {
    const certs = await testCerts();
    ca = certs.ca;
    state = new SchedulingState(policy);
    turnedAway = 0;
    [node("peer-1", { peer: "yes" }), node("peer-2", { peer: "yes" }), node("plain-1", {})].forEach((n) => state.upsertNode(n));
    server = await startServer({
      name: "extender",
      host: "127.0.0.1",
      port: 0,
      tls: { certFile: certs.certFile, keyFile: certs.keyFile },
      fastRoutes: extenderRoutes({ state, log: silentLogger, maxBodyBytes: 64 * 1024, onTurnedAway: () => (turnedAway += 1) }),
      app: healthApp(() => true),
      log: silentLogger,
    });
    url = `https://127.0.0.1:${server.port}`;
  });
  afterEach(() => server.close(0));

  const post = (path: string, body: unknown, type = "application/json") =>
    request(url).post(path).ca(ca).set("content-type", type).send(typeof body === "string" ? body : JSON.stringify(body));

  it("filters NodeNames with a reason for every removed node", async () => {
    state.upsertPod({ ...peerPod("running"), spec: { runtimeClassName: "kata-remote", nodeName: "peer-2" } });
    const res = await post("/filter", { Pod: peerPod("p1"), NodeNames: ["peer-1", "peer-2", "plain-1"] }).expect(200);
    assert.deepEqual(res.body, {
      Nodes: null,
      NodeNames: ["peer-1"],
      FailedNodes: { "peer-2": REASON.slotsFull },
      FailedAndUnresolvableNodes: { "plain-1": REASON.notSelected },
      Error: "",
    });
  });

  it("answers with full Nodes when the scheduler sent Nodes", async () => {
    const items = [node("peer-1", { peer: "yes" }), node("plain-1", {})];
    const res = await post("/filter", { Pod: peerPod("p1"), Nodes: { items } }).expect(200);
    assert.deepEqual(res.body.Nodes, { items: [items[0]] });
    assert.equal(res.body.NodeNames, null);
    assert.deepEqual(res.body.FailedAndUnresolvableNodes, { "plain-1": REASON.notSelected });
  });

  it("reads a Go nil node list (items: null) as no nodes", async () => {
    const res = await post("/filter", { Pod: peerPod("p1"), Nodes: { items: null } }).expect(200);
    assert.deepEqual(res.body.Nodes, { items: [] });
  });

  it("passes plain pods through untouched and counts them as skipped", async () => {
    const before = await counter("filter", "skipped");
    const res = await post("/filter", { Pod: plainPod, NodeNames: ["peer-1", "plain-1", "anything"] }).expect(200);
    assert.deepEqual(res.body.NodeNames, ["peer-1", "plain-1", "anything"]);
    assert.deepEqual(res.body.FailedNodes, {});
    assert.equal(await counter("filter", "skipped"), before + 1);
  });

  it("reserves quota for a pod that passed, so the next pod sees the limit", async () => {
    await post("/filter", { Pod: peerPod("p1"), NodeNames: ["peer-1"] }).expect(200);
    await post("/filter", { Pod: peerPod("p2"), NodeNames: ["peer-1"] }).expect(200);
    const before = await counter("filter", "nofit");
    const res = await post("/filter", { Pod: peerPod("p3"), NodeNames: ["peer-1", "peer-2"] }).expect(200);
    assert.deepEqual(res.body.NodeNames, []);
    assert.deepEqual(res.body.FailedNodes, { "peer-1": "peer-pod limit maxVMs=2 reached: 2 VMs in use", "peer-2": "peer-pod limit maxVMs=2 reached: 2 VMs in use" });
    assert.equal(await counter("filter", "nofit"), before + 1);
    assert.equal(turnedAway, 1, "a pod turned away for counts is reported");
  });

  it("does not report a pod turned away only for reasons preemption cannot fix", async () => {
    const res = await post("/filter", { Pod: peerPod("p1"), NodeNames: ["plain-1"] }).expect(200);
    assert.deepEqual(res.body.NodeNames, []);
    assert.equal(turnedAway, 0);
  });

  it("prioritizes with capitalised Host/Score", async () => {
    state.upsertPod({ ...peerPod("running"), spec: { runtimeClassName: "kata-remote", nodeName: "peer-2" } });
    const res = await post("/prioritize", { Pod: peerPod("p1"), NodeNames: ["peer-1", "peer-2"] }).expect(200);
    assert.deepEqual(res.body, [
      { Host: "peer-1", Score: 10 },
      { Host: "peer-2", Score: 0 },
    ]);
  });

  const bad: [string, unknown, RegExp, string?][] = [
    ["malformed JSON", "{", /not valid JSON/],
    ["a JSON array", [], /must be a JSON object/],
    ["no pod", { NodeNames: [] }, /Pod must be a pod object/],
    ["no nodes at all", { Pod: plainPod }, /needs NodeNames or Nodes/],
    ["NodeNames of numbers", { Pod: plainPod, NodeNames: [1] }, /NodeNames must be a list of strings/],
    ["a nameless node", { Pod: plainPod, Nodes: { items: [{ metadata: {} }] } }, /items\[0\] has no metadata.name/],
    ["a wrong content type", "{}", /content type must be application\/json/, "text/plain"],
  ];
  for (const [name, body, message, type] of bad) {
    it(`answers ${name} with a 4xx carrying Error and stays up`, async () => {
      const before = await counter("filter", "invalid");
      const res = await post("/filter", body, type);
      assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
      assert.match(res.body.Error, message);
      assert.equal(await counter("filter", "invalid"), before + 1);
      await post("/filter", { Pod: plainPod, NodeNames: ["a"] }).expect(200);
    });
  }
});
