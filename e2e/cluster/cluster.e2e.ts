import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { cluster } from "../setup.js";
import { processesMentioning } from "../support/processes.js";
import { waitFor } from "../support/wait.js";
import { startCluster } from "./cluster.js";

const VM = "kata.peerpods.io/vm";
const SUITE_LABEL = { "peerpods.io/e2e-suite": "cluster" };

describe("the local control plane", function () {
  let core: CoreV1Api;

  before(() => {
    core = cluster().kc.makeApiClient(CoreV1Api);
  });

  after(async () => {
    for (const name of ["slot-1", "slot-2"]) await core.deleteNamespacedPod({ name, namespace: "default", gracePeriodSeconds: 0 }).catch(() => undefined);
    for (const name of ["cluster-e2e-with-slot", "cluster-e2e-without-slot"]) await core.deleteNode({ name }).catch(() => undefined);
    await core.deleteNamespacedConfigMap({ name: "survivor", namespace: "default" }).catch(() => undefined);
  });

  const vmPod = (name: string): V1Pod => ({
    metadata: { name },
    spec: {
      nodeSelector: SUITE_LABEL,
      containers: [{ name: "app", image: "busybox", resources: { requests: { [VM]: "1" }, limits: { [VM]: "1" } } }],
    },
  });

  it("runs KWOK nodes, and the scheduler binds a pod asking for a VM slot to the one node that has a free slot", async () => {
    await cluster().addNodes([
      { name: "cluster-e2e-with-slot", labels: SUITE_LABEL },
      { name: "cluster-e2e-without-slot", labels: SUITE_LABEL },
    ]);
    const advertise = [
      { op: "add", path: `/status/capacity/${VM.replace("/", "~1")}`, value: "1" },
      { op: "add", path: `/status/allocatable/${VM.replace("/", "~1")}`, value: "1" },
    ];
    await core.patchNodeStatus({ name: "cluster-e2e-with-slot", body: advertise }, setHeaderOptions("Content-Type", PatchStrategy.JsonPatch));
    await core.createNamespacedPod({ namespace: "default", body: vmPod("slot-1") });
    const bound = await waitFor(async () => (await core.readNamespacedPod({ name: "slot-1", namespace: "default" })).spec?.nodeName, {
      timeoutMs: 20_000,
      message: "pod slot-1 to be bound",
    });
    assert.equal(bound, "cluster-e2e-with-slot");
    // KWOK plays the kubelet: the pod is reported running
    await waitFor(async () => (await core.readNamespacedPod({ name: "slot-1", namespace: "default" })).status?.phase === "Running", {
      timeoutMs: 20_000,
      message: "pod slot-1 to run",
    });
  });

  it("keeps the second VM pod pending while the only slot is taken, with the scheduler's reason", async () => {
    await core.createNamespacedPod({ namespace: "default", body: vmPod("slot-2") });
    const condition = await waitFor(
      async () => (await core.readNamespacedPod({ name: "slot-2", namespace: "default" })).status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False"),
      { timeoutMs: 20_000, message: "pod slot-2 to be marked unschedulable" },
    );
    assert.match(condition.message ?? "", /Insufficient kata\.peerpods\.io\/vm/);
  });

  it("keeps its data over an apiserver restart, and a restarted scheduler binds again", async () => {
    await core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "survivor" }, data: { a: "1" } } });
    await cluster().restartApiserver();
    assert.deepEqual((await core.readNamespacedConfigMap({ name: "survivor", namespace: "default" })).data, { a: "1" });
    await cluster().restartScheduler();
    await core.deleteNamespacedPod({ name: "slot-1", namespace: "default", gracePeriodSeconds: 0 });
    const bound = await waitFor(async () => (await core.readNamespacedPod({ name: "slot-2", namespace: "default" })).spec?.nodeName, {
      timeoutMs: 30_000,
      message: "pod slot-2 to be bound once the slot is free",
    });
    assert.equal(bound, "cluster-e2e-with-slot");
  });

  it("stop() leaves no process and no data behind", async function () {
    this.timeout(90_000);
    const second = await startCluster();
    const pids = await processesMentioning(second.dataDir);
    assert.ok(pids.length >= 5, `expected etcd, apiserver, controller-manager, scheduler and kwok, found ${pids.length} processes`);
    await second.stop();
    assert.deepEqual(await processesMentioning(second.dataDir), []);
    assert.equal(existsSync(second.dataDir), false);
  });
});
