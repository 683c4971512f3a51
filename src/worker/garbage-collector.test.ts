import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { PEERPOD_API_VERSION, PEERPOD_KIND, type PeerPod } from "../kube/peerpod.js";
import { silentLogger } from "../log/logger.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy } from "../policy/schema.js";
import { TAG } from "../providers/types.js";
import { MemoryProvider } from "../test-support/memory-provider.js";
import { GarbageCollector } from "./garbage-collector.js";

const policy = compilePolicy(defaultPolicy(), 1);
const small = policy.instanceTypes.get("small")!;
const pod = (name: string): V1Pod => ({ metadata: { name, namespace: "ns", uid: `uid-${name}` }, spec: { containers: [] }, status: { phase: "Running" } });
const record = (name: string, instanceID: string): PeerPod => ({
  apiVersion: PEERPOD_API_VERSION,
  kind: PEERPOD_KIND,
  metadata: { name, namespace: "ns" },
  spec: { podUID: `uid-${name}`, nodeName: "n1", instanceType: "small", provider: "memory", instanceName: `pp-uid-${name}` },
  status: { phase: "Ready", instanceID },
});

describe("GarbageCollector", () => {
  let cloud: MemoryProvider;
  let gc: GarbageCollector | undefined;
  let pods: V1Pod[];
  let records: PeerPod[];
  let revisited: string[];

  const start = (intervalMs = 60_000): GarbageCollector => {
    gc = new GarbageCollector({ provider: cloud, clusterId: "c1", policy: () => policy, pods: () => pods, records: () => records, graceMs: 0, intervalMs, revisit: (key) => revisited.push(key), log: silentLogger });
    return gc;
  };
  const vm = async (podName: string): Promise<string> => (await cloud.create({ name: `pp-${podName}`, instanceType: small, userData: "", tags: { [TAG.cluster]: "c1", [TAG.podUid]: `uid-${podName}` } })).id;

  beforeEach(() => {
    cloud = new MemoryProvider("unix:/nowhere");
    pods = [];
    records = [];
    revisited = [];
  });
  afterEach(() => gc?.stop());

  it("deletes the VMs no live pod owns, and sends back the records whose pod is gone or whose VM is missing, to be verified", async () => {
    const kept = await vm("a");
    await vm("gone");
    pods = [pod("a"), pod("lost")];
    records = [record("a", kept), record("lost", "vm-never-listed"), record("gone", "vm-2")];
    const collector = start();
    collector.run();
    await collector.stop();
    assert.deepEqual([...cloud.instances.keys()], [kept]);
    assert.deepEqual(revisited.sort(), ["ns/gone", "ns/lost"]);
    assert.equal(collector.mustVerify("ns/lost"), true);
    assert.equal(collector.mustVerify("ns/lost"), false, "consumed by the reconcile that verifies");
    assert.equal(collector.mustVerify("ns/a"), false);
  });

  it("runs once at a time, at start and every interval, and not after stop", async () => {
    const collector = start(20);
    collector.start();
    collector.run();
    collector.run();
    assert.equal(cloud.calls.filter((call) => call === "list").length, 1, "one run under way");
    await new Promise((resolve) => setTimeout(resolve, 70));
    await collector.stop();
    const listings = cloud.calls.filter((call) => call === "list").length;
    assert.ok(listings >= 2 && listings <= 5, `${listings} listings in 70 ms at a 20 ms interval`);
    collector.run();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(cloud.calls.filter((call) => call === "list").length, listings);
  });

  it("tries again at the next run after a failed listing", async () => {
    await vm("gone");
    const list = cloud.list.bind(cloud);
    cloud.list = () => Promise.reject(new Error("cloud down"));
    const collector = start();
    collector.run();
    await collector.stop();
    assert.equal(cloud.instances.size, 1);
    cloud.list = list;
    const again = start();
    again.run();
    await again.stop();
    assert.equal(cloud.instances.size, 0);
  });
});
