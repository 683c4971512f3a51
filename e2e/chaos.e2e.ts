/**
 * Chaos on the local control plane: peer pods created and deleted in interleaved waves while the
 * simulated cloud fails, throttles and loses answers, the worker's leader is SIGKILLed again and
 * again (two replicas with leader election), and kube-apiserver restarts once. Then: nothing lost,
 * nothing leaked. `PEERPODS_CHAOS=soak` (npm run soak) runs the long profile.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { VM_READY_CONDITION } from "../src/kube/annotations.js";
import { TAG } from "../src/providers/types.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../src/kube/peerpod.js";
import { atExit } from "./cluster/process.js";
import { createNamespace, installLocalOverlay } from "./support/suite.js";
import { cluster } from "./setup.js";
import { applyObjects, removeWebhookConfigs, withWebhookUrl } from "./support/manifests.js";
import { leaderGauge } from "./support/leader.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const PROFILES = {
  short: { pods: 300, kills: 5, killGapMs: [6_000, 12_000], convergeMs: 150_000, outageMs: 30_000 },
  soak: { pods: 1000, kills: 12, killGapMs: [5_000, 15_000], convergeMs: 300_000, outageMs: 60_000 },
} as const;
const PROFILE_NAME = process.env.PEERPODS_CHAOS === "soak" ? "soak" : "short";
const PROFILE = PROFILES[PROFILE_NAME];

const NAMESPACE = "chaos-e2e";
const CLUSTER_ID = "chaos-e2e";
const NODES = ["chaos-node-1", "chaos-node-2", "chaos-node-3"];
const VM_RESOURCE = "kata.peerpods.io/vm";
const WORKER_LEASE = "peerpods-system/peerpods-worker";
const NODE_LABEL = { "chaos-e2e.peerpods.io/pool": "peer" };
/** Creates per wave; every wave also deletes a share of the live pods. */
const WAVE = 5;
const DELETE_SHARE = 0.4;

interface SimRecord {
  id: string;
  tags: Record<string, string>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const between = ([low, high]: readonly [number, number]): number => low + Math.random() * (high - low);

describe(`chaos (${PROFILE_NAME} profile): ${PROFILE.pods} peer pods churned through ${PROFILE.kills} SIGKILLs, an apiserver restart and a flaky cloud`, function () {
  this.timeout(PROFILE.convergeMs + 600_000);
  let admin: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let dir: string;
  let kubeconfig: string;
  let inventoryFile: string;
  let policyFile: string;
  let unhealthyFile: string;
  let webhookConfig: KubernetesObject[];
  let webhook: Peerpods;
  const replicas: Peerpods[] = [];
  const everyWorker: Peerpods[] = [];

  const startWorker = async (): Promise<Peerpods> => {
    const worker = await startPeerpods({
      kubeconfig,
      args: ["--parts=worker,advertiser", `--policy-file=${policyFile}`, `--cluster-id=${CLUSTER_ID}`, "--gc-interval=2", "--gc-grace=5", "--log-level=info"],
    });
    replicas.push(worker);
    everyWorker.push(worker);
    return worker;
  };

  const inventory = async (): Promise<SimRecord[]> => {
    try {
      return (JSON.parse(await readFile(inventoryFile, "utf8")) as { instances: SimRecord[] }).instances.filter((vm) => vm.tags[TAG.cluster] === CLUSTER_ID);
    } catch {
      return [];
    }
  };
  const pods = async (): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: NAMESPACE })).items;
  const records = async (): Promise<PeerPod[]> =>
    ((await custom.listNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE })) as { items: PeerPod[] })
      .items;

  /** What is wrong with the world right now; empty once it has converged. */
  const problems = async (): Promise<string[]> => {
    const all = await pods();
    const live = all.filter((p) => !p.metadata?.deletionTimestamp);
    const liveUids = new Set(live.map((p) => p.metadata!.uid!));
    const vms = await inventory();
    const vmsPerUid = countBy(vms.map((vm) => vm.tags[TAG.podUid] ?? "(untagged)"));
    const found: string[] = [];
    const terminating = all.length - live.length;
    if (terminating) found.push(`${terminating} pods Terminating`);
    const doubled = [...vmsPerUid].filter(([, n]) => n > 1).length;
    if (doubled) found.push(`${doubled} pods with more than one VM`);
    const leaked = [...vmsPerUid.keys()].filter((uid) => !liveUids.has(uid)).length;
    if (leaked) found.push(`${leaked} VMs without a live pod`);
    const missing = [...liveUids].filter((uid) => !vmsPerUid.has(uid)).length;
    if (missing) found.push(`${missing} live pods without a VM`);
    const peerPods = await records();
    const orphans = peerPods.filter((r) => !liveUids.has(r.spec.podUID)).length;
    if (orphans) found.push(`${orphans} PeerPods without a live pod`);
    const unrecorded = live.length - peerPods.filter((r) => liveUids.has(r.spec.podUID)).length;
    if (unrecorded) found.push(`${unrecorded} live pods without a PeerPod`);
    const notReady = live.filter((p) => !podReady(p)).length;
    if (notReady) found.push(`${notReady} pods not Ready`);
    return found;
  };

  before(async function () {
    this.timeout(180_000);
    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    webhookConfig = await installLocalOverlay(admin);
    await createNamespace(core, NAMESPACE);
    await cluster().addNodes(NODES.map((name) => ({ name, labels: NODE_LABEL })));

    dir = mkdtempSync(join(tmpdir(), "chaos-e2e-"));
    atExit(() => rmSync(dir, { recursive: true, force: true }));
    inventoryFile = join(dir, "sim-inventory.json");
    policyFile = join(dir, "policy.json");
    unhealthyFile = join(dir, "cloud-down");
    const sim = {
      createMs: { median: 200, p99: 900 },
      readyMs: { median: 400, p99: 2000 },
      deleteMs: { median: 50, p99: 300 },
      errorRate: 0.1,
      crashRate: 0.1,
      throttle: { ratePerSecond: 25, burst: 10 },
      inventoryFile,
      unhealthyFile,
      unhealthyFailsCalls: true,
    };
    // the workers also advertise the VM slots, so a cloud outage shows on the nodes
    await writeFile(policyFile, JSON.stringify({ nodes: { selector: { matchLabels: NODE_LABEL }, vmsPerNode: PROFILE.pods }, provider: { name: "sim", sim } }));
    kubeconfig = await serviceAccountKubeconfig(admin, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    // The webhook runs apart from the workers under fire: this suite is about the VM lifecycle.
    webhook = await startPeerpods({ kubeconfig, args: ["--parts=webhook", `--policy-file=${policyFile}`, `--cluster-id=${CLUSTER_ID}`, "--log-level=info"] });
    await applyObjects(admin, withWebhookUrl(webhookConfig, webhook.webhookUrl, webhook.caBundle));
    await waitFor(
      async () => (await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod("probe"), dryRun: "All" })).metadata?.annotations?.["peerpods.io/instance-type"],
      { timeoutMs: 20_000, message: "the apiserver to call the webhook" },
    );
    await startWorker();
    await startWorker();
  });

  after(async function () {
    this.timeout(60_000);
    // a graceful stop releases the Leases, so the next suite's replicas need not wait for them to expire
    await Promise.all([...replicas, webhook].map((r) => r?.stop()));
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    for (const name of NODES) await core.deleteNode({ name }).catch(() => undefined);
    await removeWebhookConfigs(admin, webhookConfig);
    rmSync(dir, { recursive: true, force: true });
  });

  it("converges to exactly one ready VM per live pod, with no leak, no orphan and no double VM at any moment", async () => {
    const started = Date.now();
    const stats = { created: 0, deleted: 0, createRetries: 0, deleteRetries: 0, kills: 0, leaderKills: 0, apiserverRestarts: 0, failoversMs: [] as number[] };
    const faults = { retryable: 0, other: 0 };
    let churning = true;

    // Watch for a second VM of one pod at any moment, not only at the end.
    let mostVmsForOnePod = 0;
    const sampler = (async () => {
      while (churning) {
        const counts = countBy((await inventory()).map((vm) => vm.tags[TAG.podUid] ?? ""));
        mostVmsForOnePod = Math.max(mostVmsForOnePod, ...counts.values());
        await sleep(200);
      }
    })();

    const leader = async (): Promise<Peerpods | undefined> => {
      for (const replica of replicas) if ((await leaderGauge(replica, "peerpods-worker").catch(() => 0)) === 1) return replica;
      return undefined;
    };
    const collectFaults = async (replica: Peerpods): Promise<void> => {
      const counts = await providerErrors(replica).catch(() => ({ retryable: 0, other: 0 }));
      faults.retryable += counts.retryable;
      faults.other += counts.other;
    };

    const killer = (async () => {
      for (let kill = 0; kill < PROFILE.kills; kill += 1) {
        await sleep(between(PROFILE.killGapMs));
        if (kill === Math.floor(PROFILE.kills / 2)) {
          await cluster().restartApiserver();
          stats.apiserverRestarts += 1;
        }
        // mostly the leader (the interesting case), always at the end; sometimes the standby
        const current = kill === PROFILE.kills - 1 || Math.random() < 0.75 ? await leader() : undefined;
        const victim = current ?? replicas[Math.floor(Math.random() * replicas.length)]!;
        await collectFaults(victim);
        const killedAt = Date.now();
        await victim.kill();
        replicas.splice(replicas.indexOf(victim), 1);
        stats.kills += 1;
        if (current) {
          stats.leaderKills += 1;
          // the standby or the replacement, whichever takes the Lease first
          const tookOver = (): number | undefined =>
            everyWorker
              .flatMap((w) => w.logs())
              .filter((l) => l.msg === "became leader" && l.lease === WORKER_LEASE)
              .map((l) => Date.parse(String(l.time)))
              .find((at) => at > killedAt);
          void waitFor(tookOver, { timeoutMs: 60_000, intervalMs: 200, message: "another replica to lead" })
            .then((at) => stats.failoversMs.push(at - killedAt))
            .catch(() => undefined);
        }
        await startWorker();
      }
    })();

    const live: string[] = [];
    const waves = PROFILE.pods / WAVE;
    const waveGapMs = (PROFILE.kills * (PROFILE.killGapMs[0] + PROFILE.killGapMs[1])) / 2 / waves;
    const churn = async (wave: number): Promise<void> => {
      const names = Array.from({ length: WAVE }, (_, i) => `chaos-${wave * WAVE + i}`);
      await Promise.all(
        names.map(async (name) => {
          await retried(() => core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod(name) }), () => (stats.createRetries += 1));
          stats.created += 1;
          live.push(name);
        }),
      );
      const doomed = shuffled(live).slice(0, Math.round(names.length * DELETE_SHARE));
      await Promise.all(
        doomed.map(async (name) => {
          live.splice(live.indexOf(name), 1);
          await retried(() => core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 }), () => (stats.deleteRetries += 1));
          stats.deleted += 1;
        }),
      );
    };
    for (let wave = 0; wave < waves - 1; wave += 1) {
      await churn(wave);
      await sleep(waveGapMs);
    }
    await killer;
    // the last wave lands right after the last kill (a leader's), so convergence includes a failover
    const churnEnded = Date.now();
    await churn(waves - 1);

    let last: string[] = [];
    await waitFor(
      async () => {
        last = await problems();
        return last.length === 0 && (await leader()) !== undefined;
      },
      { timeoutMs: PROFILE.convergeMs, intervalMs: 1000, message: "convergence" },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; still wrong: ${last.join(", ")}`);
    });
    const convergedMs = Date.now() - churnEnded;
    churning = false;
    await sampler;
    await Promise.all(replicas.map(collectFaults));

    const survivors = (await pods()).map((p) => p.metadata!.name!).sort();
    assert.deepEqual(survivors, [...live].sort(), "the live pods are exactly the ones not deleted");
    const vms = await inventory();
    assert.equal(vms.length, live.length, "one VM per live pod");
    assert.equal(mostVmsForOnePod <= 1, true, `a pod had ${mostVmsForOnePod} VMs at once`);
    const rejections = everyWorker.flatMap((w) => w.logs().filter((l) => /unhandled|uncaught/i.test(String(l.msg))).map((l) => `${w.logFile}: ${String(l.msg)}`));
    assert.deepEqual(rejections, [], "no unhandled rejection or uncaught exception in any replica's log");
    assert.ok(faults.retryable > 0, "the cloud did inject retryable faults");
    assert.equal(stats.kills, PROFILE.kills);

    const report = {
      profile: PROFILE_NAME,
      ...stats,
      live: live.length,
      providerFaultsSeen: faults,
      mostVmsForOnePod,
      leaks: 0,
      losses: 0,
      convergedAfterLastKillMs: convergedMs,
      totalMs: Date.now() - started,
    };
    console.log(`      chaos report: ${JSON.stringify(report)}`);
  });

  it(`a cloud outage of ${PROFILE.outageMs / 1000} s (every call failing) deletes no VM that should live, drops the nodes' allocatable slots to 0 so new peer pods wait Unschedulable, keeps Ready pods Ready, and everything resumes`, async () => {
    const before = new Map((await inventory()).map((vm) => [vm.id, vm.tags[TAG.podUid]]));
    assert.ok(before.size > 0);
    const errorsBefore = await retryableErrors(replicas);
    const outageStarted = Date.now();
    await writeFile(unhealthyFile, "chaos-e2e: region outage\n");
    const allocatable = async (): Promise<string[]> =>
      Promise.all(NODES.map(async (name) => (await core.readNodeStatus({ name })).status?.allocatable?.[VM_RESOURCE] ?? "none"));
    await waitFor(async () => (await allocatable()).every((n) => n === "0"), { timeoutMs: 20_000, intervalMs: 250, message: "allocatable to drop to 0" });
    const allocatableZeroMs = Date.now() - outageStarted;
    // kube-scheduler follows node status through its own watch: wait until it has seen the drop
    const schedulerSawZeroMs = (await schedulerSeesNoSlots(core, NODE_LABEL, NODES.length)) - outageStarted;
    const newcomers = ["outage-0", "outage-1", "outage-2"];
    for (const name of newcomers) await core.createNamespacedPod({ namespace: NAMESPACE, body: peerPod(name) });
    await sleep(Math.max(0, PROFILE.outageMs - (Date.now() - outageStarted)));

    const notReady = (await pods()).filter((p) => !newcomers.includes(p.metadata!.name!) && !podReady(p)).length;
    assert.equal(notReady, 0, "pods that were Ready stay Ready during the outage");
    for (const name of newcomers) {
      const pod = await core.readNamespacedPod({ name, namespace: NAMESPACE });
      const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
      assert.equal(pod.spec?.nodeName, undefined, `${name} was bound during the outage`);
      assert.equal(scheduled?.reason, "Unschedulable", `${name}: PodScheduled ${JSON.stringify(scheduled)}`);
      assert.match(scheduled?.message ?? "", /Insufficient kata\.peerpods\.io\/vm/);
    }
    const during = new Set((await inventory()).map((vm) => vm.id));
    const lost = [...before.keys()].filter((id) => !during.has(id));
    assert.deepEqual(lost, [], "VMs of live pods deleted during the outage");
    const failedCalls = (await retryableErrors(replicas)) - errorsBefore;
    assert.ok(failedCalls > 0, "the outage made provider calls fail (counted in peerpods_provider_errors_total)");

    await rm(unhealthyFile);
    const resumeStarted = Date.now();
    let last: string[] = [];
    await waitFor(
      async () => {
        last = await problems();
        return last.length === 0 && (await pods()).length === before.size + newcomers.length;
      },
      { timeoutMs: 120_000, intervalMs: 500, message: "the waiting pods to get their VMs" },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; still wrong: ${last.join(", ")}`);
    });
    const after = new Map((await inventory()).map((vm) => [vm.id, vm.tags[TAG.podUid]]));
    assert.ok([...before].every(([id, uid]) => after.get(id) === uid), "every VM from before the outage is still its pod's");
    const report = { outageMs: resumeStarted - outageStarted, allocatableZeroMs, schedulerSawZeroMs, failedCalls, vmsKept: before.size, vmsLost: lost.length, waitingPods: newcomers.length, resumedMs: Date.now() - resumeStarted };
    console.log(`      outage report: ${JSON.stringify(report)}`);
  });
});

/**
 * Resolves (with the time) once kube-scheduler turns away a pod that asks for a VM slot on the selected
 * nodes for lack of slots. A probe it still binds (its cache lagging the apiserver) is deleted and tried again.
 */
async function schedulerSeesNoSlots(core: CoreV1Api, selector: Record<string, string>, nodes: number): Promise<number> {
  const noSlots = new RegExp(`\\b${nodes} Insufficient ${VM_RESOURCE.replaceAll(".", "\\.")}`);
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const name = `chaos-slot-probe-${attempt}`;
    const probe: V1Pod = {
      metadata: { name },
      spec: { nodeSelector: selector, containers: [{ name: "probe", image: "busybox", resources: { limits: { [VM_RESOURCE]: "1" } } }] },
    };
    await core.createNamespacedPod({ namespace: "default", body: probe });
    const outcome = await waitFor(
      async () => {
        const pod = await core.readNamespacedPod({ name, namespace: "default" });
        if (pod.spec?.nodeName) return "bound";
        const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
        return scheduled && noSlots.test(scheduled.message ?? "") ? "refused" : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: `the scheduler to place or refuse ${name}` },
    );
    await core.deleteNamespacedPod({ name, namespace: "default", gracePeriodSeconds: 0 });
    if (outcome === "refused") return Date.now();
  }
  throw new Error("kube-scheduler kept binding slot probes to nodes whose allocatable reads 0");
}

/** Calls `call` until it succeeds (the apiserver restarts mid-run); a 404 on delete or 409 on create means an earlier try went through. */
async function retried(call: () => Promise<unknown>, onRetry: () => void): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await call();
      return;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (attempt > 0 && (code === 404 || code === 409)) return;
      if (attempt >= 60) throw error;
      onRetry();
      await sleep(500);
    }
  }
}

function shuffled<T>(items: T[]): T[] {
  return items.map((item) => ({ item, key: Math.random() })).sort((a, b) => a.key - b.key).map(({ item }) => item);
}

function countBy(keys: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

function peerPod(name: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: { runtimeClassName: "kata-remote", containers: [{ name: "app", image: "busybox", resources: { requests: { cpu: "250m", memory: "128Mi" } } }] },
  };
}

/** Ready (the e2e KWOK stages make Ready wait for the readiness gate), with the vm-ready condition as the worker writes it. */
function podReady(pod: V1Pod): boolean {
  const conditions = pod.status?.conditions ?? [];
  const ready = conditions.some((c) => c.type === "Ready" && c.status === "True");
  return ready && conditions.some((c) => c.type === VM_READY_CONDITION && c.status === "True" && c.reason === "VMReady");
}

async function scrape(peerpods: Peerpods): Promise<string> {
  return (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
}

/** Provider calls that failed with a retryable error, summed over the replicas. */
async function retryableErrors(replicas: readonly Peerpods[]): Promise<number> {
  let total = 0;
  for (const replica of replicas) total += (await providerErrors(replica).catch(() => ({ retryable: 0, other: 0 }))).retryable;
  return total;
}

async function providerErrors(peerpods: Peerpods): Promise<{ retryable: number; other: number }> {
  const counts = { retryable: 0, other: 0 };
  for (const match of (await scrape(peerpods)).matchAll(/^peerpods_provider_errors_total\{[^}]*kind="(\w+)"[^}]*\} (\d+)/gm)) {
    counts[match[1] === "retryable" ? "retryable" : "other"] += Number(match[2]);
  }
  return counts;
}
