import assert from "node:assert/strict";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema } from "../policy/schema.js";
import { classifyPod, filterNodes, REASON, scoreNodes, type PodClass } from "./decide.js";
import { SchedulingState, type PodObject } from "./state.js";

const policyWith = (spec: Record<string, unknown> = {}) =>
  compilePolicy(
    policySpecSchema.parse({
      instanceTypes: [
        { name: "small", vcpus: 1, memoryMiB: 512 },
        { name: "big", vcpus: 4, memoryMiB: 4096, zones: ["z1"] },
      ],
      nodes: { selector: { matchLabels: { peer: "yes" } }, vmsPerNode: 2 },
      ...spec,
    }),
    1,
  );

const node = (name: string, labels: Record<string, string> = { peer: "yes" }, annotations?: Record<string, string>) => ({ metadata: { name, labels, annotations } });

let podCounter = 0;
const peerPod = (nodeName?: string, instanceType = "small", extra: Partial<PodObject> = {}): PodObject => ({
  metadata: { uid: `uid-${++podCounter}`, namespace: "team", annotations: { "peerpods.io/instance-type": instanceType } },
  spec: { runtimeClassName: "kata-remote", nodeName },
  status: { phase: "Running" },
  ...extra,
});

function stateWith(spec: Record<string, unknown>, nodes: ReturnType<typeof node>[], pods: PodObject[]): SchedulingState {
  const state = new SchedulingState(policyWith(spec));
  nodes.forEach((n) => state.upsertNode(n));
  pods.forEach((p) => state.upsertPod(p));
  return state;
}

const peer = (state: SchedulingState, instanceType = "small"): PodClass => classifyPod(peerPod(undefined, instanceType), state.policy);

describe("classifyPod", () => {
  const policy = policyWith();
  const cases: [string, PodObject, PodClass["kind"], RegExp?][] = [
    ["no runtime class", { metadata: { uid: "u", namespace: "a" }, spec: {} }, "plain"],
    ["other runtime class", { metadata: { uid: "u", namespace: "a" }, spec: { runtimeClassName: "runc" } }, "plain"],
    ["excluded namespace", { metadata: { uid: "u", namespace: "kube-system" }, spec: { runtimeClassName: "kata-remote" } }, "plain"],
    ["no instance type annotation", { metadata: { uid: "u", namespace: "a" }, spec: { runtimeClassName: "kata-remote" } }, "invalid", /not admitted by the peerpods webhook/],
    ["unknown instance type", peerPod(undefined, "gone"), "invalid", /"gone" is no longer in the policy's catalog/],
    ["no uid", { metadata: { namespace: "a" }, spec: { runtimeClassName: "kata-remote" } }, "invalid", /no metadata.uid/],
    ["peer pod", peerPod(undefined, "big"), "peer"],
  ];
  for (const [name, pod, kind, reason] of cases) {
    it(name, () => {
      const result = classifyPod(pod, policy);
      assert.equal(result.kind, kind);
      if (reason) assert.match((result as { reason: string }).reason, reason);
    });
  }
  it("resolves the instance type from the catalog", () => {
    const result = classifyPod(peerPod(undefined, "big"), policy);
    assert.equal(result.kind === "peer" && result.instanceType.vcpus, 4);
  });
});

describe("filterNodes", () => {
  it("passes every node through for a plain pod", () => {
    const state = stateWith({}, [], []);
    assert.deepEqual(filterNodes({ kind: "plain" }, ["a", "b"], state), { passed: ["a", "b"], failed: {}, unresolvable: {} });
  });

  it("turns every node away, unresolvably, while the cloud provider is unhealthy", () => {
    const state = stateWith({}, [node("free"), node("half")], []);
    const outcome = filterNodes(peer(state), ["free", "half"], state, "the cloud provider is unhealthy (zone down)");
    assert.deepEqual(outcome, { passed: [], failed: {}, unresolvable: { free: "the cloud provider is unhealthy (zone down)", half: "the cloud provider is unhealthy (zone down)" } });
    assert.deepEqual(filterNodes({ kind: "plain" }, ["free"], state, "down").passed, ["free"], "plain pods are not the provider's business");
  });

  it("fails every node as unresolvable for a peer pod it cannot place", () => {
    const state = stateWith({}, [node("a")], []);
    const outcome = filterNodes({ kind: "invalid", reason: "why" }, ["a", "b"], state);
    assert.deepEqual(outcome, { passed: [], failed: {}, unresolvable: { a: "why", b: "why" } });
  });

  it("keeps matching nodes with free slots and gives each other node its reason", () => {
    const state = stateWith(
      {},
      [node("free"), node("full"), node("other", { peer: "no" }), node("half")],
      [peerPod("full"), peerPod("full"), peerPod("half")],
    );
    const outcome = filterNodes(peer(state), ["free", "full", "other", "half", "unseen"], state);
    assert.deepEqual(outcome.passed, ["free", "half"]);
    assert.deepEqual(outcome.failed, { full: REASON.slotsFull, unseen: REASON.unknownNode });
    assert.deepEqual(outcome.unresolvable, { other: REASON.notSelected });
  });

  it("honours the per-node slots annotation", () => {
    const state = stateWith({}, [node("one", { peer: "yes" }, { "peerpods.io/vms-per-node": "1" }), node("bad", { peer: "yes" }, { "peerpods.io/vms-per-node": "x" })], [peerPod("one"), peerPod("bad")]);
    const outcome = filterNodes(peer(state), ["one", "bad"], state);
    assert.deepEqual(outcome.passed, ["bad"]);
    assert.equal(outcome.failed.one, REASON.slotsFull);
  });

  it("keeps nodes in zones the instance type is offered in", () => {
    const zoned = (name: string, zone?: string) => node(name, zone ? { peer: "yes", "topology.kubernetes.io/zone": zone } : { peer: "yes" });
    const state = stateWith({}, [zoned("in", "z1"), zoned("out", "z2"), zoned("none")], []);
    const outcome = filterNodes(peer(state, "big"), ["in", "out", "none"], state);
    assert.deepEqual(outcome.passed, ["in"]);
    assert.equal(outcome.unresolvable.out, "instance type big is not offered in zone z2 (offered in z1)");
    assert.match(outcome.unresolvable.none!, /no topology.kubernetes.io\/zone label .* offered only in z1/);
    assert.deepEqual(filterNodes(peer(state, "small"), ["in", "out", "none"], state).passed, ["in", "out", "none"]);
  });

  const limitCases: [string, Record<string, unknown>, string[], string, string | undefined][] = [
    ["under maxVMs", { maxVMs: 3 }, ["small", "small"], "small", undefined],
    ["at maxVMs", { maxVMs: 2 }, ["small", "small"], "small", "peer-pod limit maxVMs=2 reached: 2 VMs in use"],
    ["maxVCPUs fits exactly", { maxVCPUs: 5 }, ["small"], "big", undefined],
    ["over maxVCPUs", { maxVCPUs: 5 }, ["small", "small"], "big", "peer-pod limit maxVCPUs=5 would be exceeded: 2 vCPUs in use, instance type big needs 4"],
    ["maxVMs zero", { maxVMs: 0 }, [], "small", "peer-pod limit maxVMs=0 reached: 0 VMs in use"],
  ];
  for (const [name, limits, running, wanted, reason] of limitCases) {
    it(`cluster limits: ${name}`, () => {
      const state = stateWith({ limits, nodes: { vmsPerNode: 10 } }, [node("a", { "topology.kubernetes.io/zone": "z1" }), node("b", { "topology.kubernetes.io/zone": "z1" })], running.map((t) => peerPod("a", t)));
      const outcome = filterNodes(peer(state, wanted), ["a", "b"], state);
      if (reason) assert.deepEqual(outcome, { passed: [], failed: { a: reason, b: reason }, unresolvable: {} });
      else assert.deepEqual(outcome.passed, ["a", "b"]);
    });
  }

  it("counts pods that passed the filter before their binding is seen, but not the pod itself", () => {
    const state = stateWith({ limits: { maxVMs: 1 } }, [node("a")], []);
    const first = peer(state);
    assert.equal(first.kind, "peer");
    state.reserve((first as { uid: string }).uid, 1);
    assert.deepEqual(filterNodes(first, ["a"], state).passed, ["a"], "a retry of the same pod still fits");
    assert.match(filterNodes(peer(state), ["a"], state).failed.a!, /maxVMs=1 reached: 1 VMs in use/);
  });
});

describe("scoreNodes", () => {
  const pods = [peerPod("full"), peerPod("full"), peerPod("half")];
  const nodes = [node("empty"), node("half"), node("full")];

  it("Spread favours the node with the fewest peer pods", () => {
    const state = stateWith({ scheduling: { strategy: "Spread" }, nodes: { vmsPerNode: 10 } }, nodes, pods);
    assert.deepEqual(scoreNodes(peer(state), ["empty", "half", "full"], state), [
      { Host: "empty", Score: 10 },
      { Host: "half", Score: 5 },
      { Host: "full", Score: 0 },
    ]);
  });

  it("BinPack favours the fullest node", () => {
    const state = stateWith({ scheduling: { strategy: "BinPack" }, nodes: { vmsPerNode: 10 } }, nodes, pods);
    assert.deepEqual(scoreNodes(peer(state), ["empty", "half", "full"], state), [
      { Host: "empty", Score: 0 },
      { Host: "half", Score: 5 },
      { Host: "full", Score: 10 },
    ]);
  });

  it("gives equal nodes and plain pods equal scores", () => {
    const state = stateWith({}, nodes, []);
    assert.deepEqual(scoreNodes(peer(state), ["empty", "half"], state).map((p) => p.Score), [10, 10]);
    assert.deepEqual(scoreNodes({ kind: "plain" }, ["empty", "full"], state).map((p) => p.Score), [0, 0]);
  });
});
