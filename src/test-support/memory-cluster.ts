import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION, VM_READY_CONDITION } from "../kube/annotations.js";
import type { EventRecorder } from "../kube/events.js";
import { objectKey } from "../kube/keys.js";
import { PEERPOD_API_VERSION, PEERPOD_KIND, VM_FINALIZER, type PeerPod } from "../kube/peerpod.js";
import { silentLogger } from "../log/logger.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy } from "../policy/schema.js";
import type { Provider } from "../providers/types.js";
import type { ClusterWrites } from "../worker/cluster-writes.js";
import { createInstance } from "../worker/lifecycle/launch.js";
import { createRecord } from "../worker/lifecycle/record.js";
import { newState, type State, type StepDeps } from "../worker/lifecycle/step.js";
import { MemoryProvider } from "./memory-provider.js";

/** The cluster as the worker sees it: pods and PeerPods, with writes that may fail like a flaky apiserver. */
export class MemoryCluster implements ClusterWrites {
  readonly pods = new Map<string, V1Pod>();
  readonly records = new Map<string, PeerPod>();
  /** The reasons of the Events recorded through `events`, in order. */
  readonly reasons: string[] = [];
  readonly events: EventRecorder = { record: (_target, _type, reason) => void this.reasons.push(reason) };
  failureRate = 0;
  #random = seeded(3);

  addPod(name: string): void {
    this.pods.set(`ns/${name}`, {
      metadata: { name, namespace: "ns", uid: `uid-${name}`, annotations: { [ANNOTATION.instanceType]: "small" } },
      spec: { runtimeClassName: "kata-remote", nodeName: "node-1", containers: [] },
      status: { phase: "Pending", conditions: [] },
    });
  }

  #maybeFail(what: string): void {
    if (this.#random() < this.failureRate) throw new Error(`apiserver unavailable during ${what}`);
  }

  async createRecord(pod: V1Pod, spec: PeerPod["spec"]): Promise<PeerPod> {
    this.#maybeFail("create");
    const key = objectKey(pod.metadata);
    const existing = this.records.get(key);
    if (existing) return structuredClone(existing);
    const record: PeerPod = {
      apiVersion: PEERPOD_API_VERSION,
      kind: PEERPOD_KIND,
      metadata: { name: pod.metadata!.name!, namespace: "ns", uid: `rec-${spec.podUID}`, finalizers: [VM_FINALIZER] },
      spec,
    };
    this.records.set(key, record);
    return structuredClone(record);
  }

  async getRecord(namespace: string, name: string): Promise<PeerPod | undefined> {
    const record = this.records.get(objectKey({ namespace, name }));
    return record && structuredClone(record);
  }

  async patchRecordStatus(record: PeerPod, status: NonNullable<PeerPod["status"]>): Promise<PeerPod> {
    this.#maybeFail("status patch");
    const stored = this.#stored(record);
    stored.status = { ...stored.status, ...status };
    return structuredClone(stored);
  }

  async patchRecordSpec(record: PeerPod, spec: Partial<PeerPod["spec"]>): Promise<PeerPod> {
    this.#maybeFail("spec patch");
    const stored = this.#stored(record);
    stored.spec = { ...stored.spec, ...spec };
    return structuredClone(stored);
  }

  async releaseRecord(record: PeerPod): Promise<void> {
    this.#maybeFail("release");
    this.records.delete(objectKey(record.metadata));
  }

  async setPodCondition(pod: V1Pod, status: "True" | "False", reason: string): Promise<void> {
    this.#maybeFail("pod status patch");
    const stored = this.pods.get(objectKey(pod.metadata));
    if (!stored) throw new Error("pod not found");
    const others = (stored.status!.conditions ?? []).filter((c) => c.type !== VM_READY_CONDITION);
    stored.status!.conditions = [...others, { type: VM_READY_CONDITION, status, reason }];
  }

  #stored(record: PeerPod): PeerPod {
    const stored = this.records.get(objectKey(record.metadata));
    if (!stored) throw new Error("PeerPod not found");
    return stored;
  }
}

function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** The lifecycle steps' dependencies over `cluster` and `provider`, the default policy, no pool and no limits. */
export function stepsOver(cluster: MemoryCluster, provider: Provider, overrides: Partial<StepDeps> = {}): StepDeps {
  const policy = compilePolicy(defaultPolicy(), 1);
  return {
    clusterId: "c1",
    provider,
    writes: cluster,
    events: cluster.events,
    policy: () => policy,
    bindTimes: { boundAt: () => Date.now() },
    readyMarks: new Map(),
    signal: new AbortController().signal,
    ...overrides,
  };
}

/** A reconcile's state for the pod `ns/name` as `cluster` holds it now. */
export function stateIn(cluster: MemoryCluster, name: string): State {
  const key = `ns/${name}`;
  return newState(key, structuredClone(cluster.pods.get(key)), structuredClone(cluster.records.get(key)), silentLogger);
}

/** A bound pod `ns/name` and its PeerPod record, as decide leaves them for the VM's create. */
export async function recordedPod(cluster: MemoryCluster, steps: StepDeps, name: string): Promise<State> {
  cluster.addPod(name);
  const state = stateIn(cluster, name);
  await createRecord(steps, state);
  return state;
}

/** The same with its VM booted cold. */
export async function podWithVm(cluster: MemoryCluster, steps: StepDeps, name: string): Promise<State> {
  const state = await recordedPod(cluster, steps, name);
  await createInstance(steps, state, "cloud");
  return state;
}

/** An empty cluster and cloud, and the lifecycle steps over them. */
export function memoryWorld(): { cluster: MemoryCluster; cloud: MemoryProvider; steps: StepDeps } {
  const cluster = new MemoryCluster();
  const cloud = new MemoryProvider("unix:/agent");
  return { cluster, cloud, steps: stepsOver(cluster, cloud) };
}
