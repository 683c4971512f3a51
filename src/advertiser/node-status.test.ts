import assert from "node:assert/strict";
import { ApiException } from "@kubernetes/client-node";
import { silentLogger } from "../log/logger.js";
import { registry } from "../metrics/registry.js";
import { PolicyStore } from "../policy/store.js";
import { policySpecSchema } from "../policy/schema.js";
import { TokenBucket } from "../providers/ratelimit.js";
import type { NodeStatusObject } from "./desired.js";
import { nodeStatusSync } from "./node-status.js";

const ready = [{ type: "Ready", status: "True" }];
const RES = "kata.peerpods.io/vm";
const GENERATION = "peerpods.io/policy-generation";
const ADVERTISED = "peerpods.io/advertised-resource";

async function slotGauge(node: string, state: string): Promise<number | undefined> {
  const metric = await registry.getSingleMetric("peerpods_node_vm_slots")!.get();
  return metric.values.find((v) => v.labels.node === node && v.labels.state === state)?.value;
}

describe("nodeStatusSync", () => {
  let nodes: Map<string, NodeStatusObject>;
  let patches: { kind: string; name: string; body: unknown; contentType: unknown }[];
  let failWith: number | undefined;
  let healthy: boolean;
  let policy: PolicyStore;
  let sync: (name: string) => Promise<void>;

  beforeEach(() => {
    nodes = new Map();
    patches = [];
    failWith = undefined;
    healthy = true;
    policy = new PolicyStore(policySpecSchema.parse({ nodes: { selector: { matchLabels: { peer: "yes" } }, vmsPerNode: 2 } }), silentLogger);
    const record = (kind: string) => async ({ name, body }: { name: string; body: unknown }, options?: unknown) => {
      if (failWith) throw new ApiException(failWith, `HTTP ${failWith}`, "", {});
      const middleware = (options as { middleware?: { pre(ctx: unknown): { toPromise(): Promise<unknown> } }[] }).middleware ?? [];
      let contentType: unknown;
      for (const m of middleware) {
        await m.pre({ setHeaderParam: (key: string, value: string) => key === "Content-Type" && (contentType = value) } as unknown).toPromise();
      }
      patches.push({ kind, name, body, contentType });
      return {};
    };
    const api = { patchNodeStatus: record("status"), patchNode: record("node") };
    ({ sync } = nodeStatusSync({ api: api as never, node: (name) => nodes.get(name), policy, providerHealthy: () => healthy, bucket: new TokenBucket(1000, 1000), log: silentLogger }));
  });

  it("patches a matching node with a JSON patch and publishes its slots", async () => {
    nodes.set("n1", { metadata: { name: "n1", labels: { peer: "yes" } }, status: { capacity: {}, allocatable: {}, conditions: ready } });
    await sync("n1");
    assert.equal(patches.length, 2);
    assert.equal(patches[0]!.kind, "status");
    assert.equal(patches[0]!.contentType, "application/json-patch+json");
    assert.deepEqual(patches[0]!.body, [
      { op: "add", path: "/status/capacity/kata.peerpods.io~1vm", value: "2" },
      { op: "add", path: "/status/allocatable/kata.peerpods.io~1vm", value: "2" },
    ]);
    assert.equal(await slotGauge("n1", "allocatable"), 2);
    assert.deepEqual(patches[1], { kind: "node", name: "n1", body: { metadata: { annotations: { [GENERATION]: "1", [ADVERTISED]: RES } } }, contentType: "application/merge-patch+json" });
  });

  it("stamps a new policy generation so the scheduler retries pods the extender turned away", async () => {
    nodes.set("n1", { metadata: { name: "n1", labels: { peer: "yes" }, annotations: { [GENERATION]: "1", [ADVERTISED]: RES } }, status: { capacity: { [RES]: "2" }, allocatable: { [RES]: "2" }, conditions: ready } });
    policy.update({ source: "test", document: { nodes: { selector: { matchLabels: { peer: "yes" } }, vmsPerNode: 2 }, limits: { maxVMs: 9 } } });
    await sync("n1");
    assert.deepEqual(patches.map((p) => [p.kind, p.body]), [["node", { metadata: { annotations: { [GENERATION]: "2" } } }]]);
  });

  it("removes the resource and the stamp from a node that stopped matching", async () => {
    nodes.set("n1", { metadata: { name: "n1", labels: { peer: "no" }, annotations: { [GENERATION]: "1", [ADVERTISED]: RES } }, status: { capacity: { [RES]: "2" }, allocatable: { [RES]: "2" }, conditions: ready } });
    await sync("n1");
    assert.deepEqual(patches.map((p) => [p.kind, p.body]), [
      ["status", [{ op: "remove", path: "/status/capacity/kata.peerpods.io~1vm" }, { op: "remove", path: "/status/allocatable/kata.peerpods.io~1vm" }]],
      ["node", { metadata: { annotations: { [GENERATION]: null, [ADVERTISED]: null } } }],
    ]);
    assert.equal(await slotGauge("n1", "capacity"), undefined);
  });

  it("does not patch a node that already says it", async () => {
    nodes.set("n1", { metadata: { name: "n1", labels: { peer: "yes" }, annotations: { [GENERATION]: "1", [ADVERTISED]: RES } }, status: { capacity: { "kata.peerpods.io/vm": "2" }, allocatable: { "kata.peerpods.io/vm": "2" }, conditions: ready } });
    await sync("n1");
    assert.deepEqual(patches, []);
  });

  it("drops allocatable while the provider is unhealthy", async () => {
    healthy = false;
    nodes.set("n1", { metadata: { name: "n1", labels: { peer: "yes" }, annotations: { [GENERATION]: "1", [ADVERTISED]: RES } }, status: { capacity: { "kata.peerpods.io/vm": "2" }, allocatable: { "kata.peerpods.io/vm": "2" }, conditions: ready } });
    await sync("n1");
    assert.deepEqual(patches[0]!.body, [{ op: "add", path: "/status/allocatable/kata.peerpods.io~1vm", value: "0" }]);
    assert.equal(await slotGauge("n1", "allocatable"), 0);
    assert.equal(await slotGauge("n1", "capacity"), 2);
  });

  it("removes the old name after the policy renames the resource", async () => {
    nodes.set("n1", { metadata: { name: "n1", labels: { peer: "yes" }, annotations: { [GENERATION]: "1", [ADVERTISED]: RES } }, status: { capacity: { "kata.peerpods.io/vm": "2" }, allocatable: { "kata.peerpods.io/vm": "2" }, conditions: ready } });
    policy.update({ source: "test", document: { extendedResourceName: "example.com/vm", nodes: { selector: { matchLabels: { peer: "yes" } }, vmsPerNode: 2 } } });
    await sync("n1");
    assert.deepEqual(
      (patches[0]!.body as { op: string; path: string }[]).map((op) => `${op.op} ${op.path}`),
      ["add /status/capacity/example.com~1vm", "remove /status/capacity/kata.peerpods.io~1vm", "add /status/allocatable/example.com~1vm", "remove /status/allocatable/kata.peerpods.io~1vm"],
    );
  });

  it("removes the resource a node says it advertised, even one this process never saw in a policy", async () => {
    nodes.set("n1", {
      metadata: { name: "n1", labels: { peer: "yes" }, annotations: { [GENERATION]: "7", [ADVERTISED]: "example.com/old" } },
      status: { capacity: { "example.com/old": "2" }, allocatable: { "example.com/old": "2" }, conditions: ready },
    });
    await sync("n1");
    assert.deepEqual(patches.map((p) => [p.kind, p.body]), [
      [
        "status",
        [
          { op: "add", path: "/status/capacity/kata.peerpods.io~1vm", value: "2" },
          { op: "remove", path: "/status/capacity/example.com~1old" },
          { op: "add", path: "/status/allocatable/kata.peerpods.io~1vm", value: "2" },
          { op: "remove", path: "/status/allocatable/example.com~1old" },
        ],
      ],
      ["node", { metadata: { annotations: { [GENERATION]: "1", [ADVERTISED]: RES } } }],
    ]);
  });

  it("throws on a failed patch so the queue retries, and is done with a deleted node", async () => {
    nodes.set("n1", { metadata: { name: "n1", labels: { peer: "yes" } }, status: { capacity: {}, allocatable: {}, conditions: ready } });
    failWith = 422;
    await assert.rejects(sync("n1"), /HTTP 422/);
    failWith = 404;
    await sync("n1");
    assert.equal(await slotGauge("n1", "capacity"), undefined);
    nodes.delete("n1");
    await sync("n1");
    assert.deepEqual(patches, []);
  });
});
