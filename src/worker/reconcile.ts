import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION } from "../kube/annotations.js";
import { apiStatus } from "../kube/errors.js";
import { eventTarget, POD, type EventRecorder, type EventType } from "../kube/events.js";
import type { Logger } from "../log/logger.js";
import { vmOperations, vmReadySeconds } from "../metrics/worker.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { instanceSpecFor, podCommand } from "../providers/instance-spec.js";
import { ProviderError, TAG, type Instance, type InstanceSpec, type Provider } from "../providers/types.js";
import { decide, podFacts, recordFacts, type Action, type InstanceFacts } from "./decide.js";
import { instanceName, nextInstanceName, type PeerPod } from "../kube/peerpod.js";
import type { HandlerResult } from "../kube/work-queue.js";
import type { PoolClaims } from "./pool/manager.js";
import type { ClusterWrites } from "./cluster-writes.js";
import type { VmBudget } from "./vm-budget.js";
import { errorKind } from "./counted-provider.js";

export interface ReconcilerDeps {
  clusterId: string;
  provider: Provider;
  writes: ClusterWrites;
  events: EventRecorder;
  policy: () => CompiledPolicy;
  /** The informers' views; keys are `namespace/name`. */
  pod: (key: string) => V1Pod | undefined;
  record: (key: string) => PeerPod | undefined;
  /** When the pod was bound to its node (epoch ms), for the bound → ready time. */
  boundAt: (key: string, pod: V1Pod) => number;
  /** Asks to be woken when this booting VM is ready (or gone). */
  waitForReady: (key: string, instanceId: string) => void;
  /** The warm pool, when the policy and the provider make one. */
  pool?: PoolClaims;
  /** The pod's VM as the ready watcher last listed it, if it woke this key; saves asking the cloud again. */
  takeListedInstance: (key: string) => Instance | undefined;
  /** Whether a cloud listing missed this pod's VM since the last reconcile (consumed by the call). */
  mustVerify?: (key: string) => boolean;
  /** Counts VMs against the policy's cluster-wide limits before a cold create. */
  budget?: VmBudget;
  log: Logger;
}

/** What one reconcile knows; steps update it with what the API calls return, so the loop never waits for the informers. */
interface State {
  key: string;
  pod: V1Pod | undefined;
  record: PeerPod | undefined;
  instance: InstanceFacts;
  found: Instance | undefined;
  /** The vm-ready condition as last written by this reconcile, ahead of the informer. */
  vmReady: boolean | undefined;
  /** Set by a step that has to wait (for room under the limits): the reconcile ends there. */
  requeueAfterMs?: number;
  log: Logger;
}

/** A booting VM is looked at again after this long even if the ready watcher never calls. */
const READY_FALLBACK_MS = 30_000;

/** A pod waiting for room under the limits is looked at again after this long, if no VM going wakes it first. */
const ROOM_RECHECK_MS = 30_000;

/** More steps than a full create takes; beyond this the key is requeued rather than looping. */
const MAX_STEPS = 10;

/**
 * Brings one pod's VM to the state its pod needs, one decided step at a time. Every step is
 * idempotent, so a crash between any two of them is repaired by the next reconcile.
 */
export class Reconciler {
  /** The VM this replica last marked ready per pod key, to tell a PeerPod cache that is behind that patch. */
  readonly #markedReady = new Map<string, string>();

  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<HandlerResult> {
    const state: State = {
      key,
      pod: this.deps.pod(key),
      record: this.deps.record(key),
      instance: { kind: "unknown", verify: this.deps.mustVerify?.(key) ?? false },
      found: undefined,
      vmReady: undefined,
      log: this.deps.log.child({ pod: key }),
    };
    const listed = this.deps.takeListedInstance(key);
    if (listed && listed.id === state.record?.status?.instanceID) {
      state.found = listed;
      state.instance = present(listed);
    }
    for (let step = 0; step < MAX_STEPS; step++) {
      const action = this.#decide(state);
      if (action.kind === "none") return;
      if (action.kind === "waitReady") {
        this.deps.waitForReady(key, state.found!.id);
        return { requeueAfterMs: READY_FALLBACK_MS };
      }
      await this.#act(action, state);
      if (state.requeueAfterMs !== undefined) return { requeueAfterMs: state.requeueAfterMs };
    }
    return { requeueAfterMs: 100 };
  }

  #decide(state: State): Action {
    const policy = this.deps.policy();
    const pod = state.pod && podFacts(state.pod, policy);
    if (pod && state.vmReady !== undefined) pod.vmReady = state.vmReady;
    return decide(pod, state.record && recordFacts(state.record), state.instance);
  }

  async #act(action: Exclude<Action, { kind: "none" | "waitReady" }>, state: State): Promise<void> {
    switch (action.kind) {
      case "createRecord":
        return this.#createRecord(state);
      case "createInstance":
        return this.#createInstance(state);
      case "lookUpInstance":
        return this.#lookUpInstance(state);
      case "claimInstance":
        return this.#claimInstance(state);
      case "markReady":
        return this.#markReady(state);
      case "replaceInstance":
        return this.#replaceInstance(state);
      case "teardown":
        return this.#teardown(state);
    }
  }

  async #createRecord(state: State): Promise<void> {
    const pod = state.pod!;
    const uid = pod.metadata!.uid!;
    const policy = this.deps.policy();
    let instanceType = pod.metadata?.annotations?.[ANNOTATION.instanceType];
    if (!instanceType) {
      instanceType = policy.spec.defaultInstanceType ?? policy.byPreference[0]!.name;
      state.log.warn({ instanceType }, "pod has no instance type annotation (was the webhook bypassed?); using the default");
    }
    state.record = await this.deps.writes.createRecord(pod, {
      podUID: uid,
      nodeName: pod.spec!.nodeName!,
      instanceType,
      provider: this.deps.provider.name,
      instanceName: instanceName(uid),
    });
    state.log.debug({ instanceType }, "PeerPod recorded");
  }

  async #createInstance(state: State): Promise<void> {
    const pod = state.pod!;
    const record = state.record!;
    const pooled = this.deps.pool?.serves(record.spec.instanceType) ?? false;
    if (pooled && (await this.#recordIsBehind(state))) return;
    const claim = pooled ? this.deps.pool!.take(record.spec.instanceType) : undefined;
    if (claim?.result === "hit") return this.#recordPoolClaim(state, claim.instance);
    const spec = podInstanceSpec(pod, record, this.deps.policy(), this.deps.clusterId);
    if (!(await this.#roomUnderLimits(state, spec))) return;
    const started = Date.now();
    let instance: Instance;
    try {
      instance = await this.#create(spec, state);
    } catch (error) {
      this.deps.budget?.release(state.key);
      await this.#failed(state, "create", error);
      throw error;
    }
    vmOperations.inc({ op: "create", result: "ok" });
    state.record = await this.deps.writes.patchRecordStatus(record, {
      phase: "Creating",
      instanceID: instance.id,
      address: instance.address ?? null,
      agentEndpoint: instance.agentEndpoint ?? null,
      message: null,
      ...(claim ? { warmPool: claim.result } : {}),
    });
    state.found = instance;
    state.instance = present(instance);
    state.log.info({ instanceId: instance.id, instanceType: record.spec.instanceType, ms: Date.now() - started }, "VM created");
  }

  /** Takes room for the VM under the policy's limits; without room the record says why and the pod is told once per wait. */
  async #roomUnderLimits(state: State, spec: InstanceSpec): Promise<boolean> {
    const room = this.deps.budget?.take(state.key, spec.instanceType, this.deps.policy().spec.limits);
    if (!room || room.ok) return true;
    state.requeueAfterMs = ROOM_RECHECK_MS;
    if (!room.first) return false;
    const message = `waiting for room under the policy's limits: ${room.reason}`;
    vmOperations.inc({ op: "create", result: "limit" });
    state.log.warn({ instanceType: state.record!.spec.instanceType }, message);
    this.#event(state, "Warning", "VMLimitReached", message);
    try {
      state.record = await this.deps.writes.patchRecordStatus(state.record!, { phase: "Pending", message });
    } catch (error) {
      // the next attempt is a first wait again, so the record gets its message
      this.deps.budget?.release(state.key);
      throw error;
    }
    return false;
  }

  /**
   * Whether the informer's record lags behind a VM this process already recorded for the pod. A cold
   * create is idempotent and needs no such check; a second pool claim would give the pod two VMs.
   */
  async #recordIsBehind(state: State): Promise<boolean> {
    const cached = state.record!;
    const fresh = await this.deps.writes.getRecord(cached.metadata.namespace, cached.metadata.name);
    if (fresh && !fresh.status?.instanceID && fresh.metadata.uid === cached.metadata.uid) return false;
    state.record = fresh;
    state.instance = { kind: "unknown" };
    return true;
  }

  /** A cold create; when the cloud or the host is full, an idle pool VM makes room for the pod's. */
  async #create(spec: InstanceSpec, state: State): Promise<Instance> {
    try {
      return await this.deps.provider.create(spec);
    } catch (error) {
      if (!(error instanceof ProviderError && error.kind === "quota") || !(await this.deps.pool?.evictIdle())) throw error;
      state.log.info({ reason: error.message }, "limit reached: an idle pool VM was deleted to make room");
      return this.deps.provider.create(spec);
    }
  }

  /**
   * The claim of a warm-pool VM goes into the PeerPod before anything is done to the VM: after a
   * crash the record says whose it is (the pool leaves VMs that records hold alone), and the next
   * reconcile finishes the hand-over (decide: claimInstance).
   */
  async #recordPoolClaim(state: State, instance: Instance): Promise<void> {
    state.record = await this.deps.writes.patchRecordStatus(state.record!, {
      phase: "Creating",
      instanceID: instance.id,
      address: instance.address ?? null,
      agentEndpoint: instance.agentEndpoint ?? null,
      message: null,
      warmPool: "hit",
    });
    state.found = instance;
    state.instance = present(instance);
    state.log.info({ instanceId: instance.id, instanceType: instance.instanceType }, "warm-pool VM claimed");
  }

  /** Hands the recorded pool VM to the pod: its data through the agent channel, then its tags. */
  async #claimInstance(state: State): Promise<void> {
    const { provider } = this.deps;
    if (!provider.claim) throw new ProviderError("invalid", `provider ${provider.name} cannot hand a pool VM to a pod`);
    const spec = podInstanceSpec(state.pod!, state.record!, this.deps.policy(), this.deps.clusterId);
    try {
      state.found = await provider.claim(state.found!.id, { name: spec.name, tags: spec.tags, userData: spec.userData });
    } catch (error) {
      if (!(error instanceof ProviderError && error.kind === "notFound")) throw error;
      state.found = undefined;
    }
    vmOperations.inc({ op: "claim", result: state.found ? "ok" : "gone" });
    state.instance = state.found ? present(state.found) : { kind: "absent" };
  }

  async #lookUpInstance(state: State): Promise<void> {
    state.found = await this.deps.provider.get(state.record!.status!.instanceID!);
    state.instance = state.found ? present(state.found) : { kind: "absent" };
  }

  async #markReady(state: State): Promise<void> {
    const pod = state.pod!;
    const instance = state.found!;
    let record = state.record!;
    if (record.status?.phase !== "Ready" && this.#markedReady.get(state.key) === instance.id) {
      // the cache may be behind this replica's own Ready patch: ask the apiserver before patching and telling again
      record = (await this.deps.writes.getRecord(record.metadata.namespace, record.metadata.name)) ?? record;
    }
    const becomesReady = record.status?.phase !== "Ready";
    const [updated] = await Promise.all([
      becomesReady
        ? this.deps.writes.patchRecordStatus(record, {
            phase: "Ready",
            instanceID: instance.id,
            address: instance.address ?? null,
            agentEndpoint: instance.agentEndpoint ?? null,
            readyTime: new Date().toISOString(),
            message: null,
          })
        : record,
      this.deps.writes.setPodCondition(pod, "True", "VMReady", `VM ${instance.id} is ready`),
    ]);
    state.record = updated;
    state.vmReady = true;
    if (!becomesReady) return;
    this.#markedReady.set(state.key, instance.id);
    const seconds = Math.max(0, (Date.now() - this.deps.boundAt(state.key, pod)) / 1000);
    vmReadySeconds.observe(seconds);
    this.#event(state, "Normal", "VMReady", `VM ${instance.id} (${record.spec.instanceType}) ready ${seconds.toFixed(1)}s after the pod was bound`);
    state.log.info({ instanceId: instance.id, seconds }, "VM ready");
  }

  /** The VM vanished or is dying behind peerpods' back: a new one replaces it, under a new idempotency key. */
  async #replaceInstance(state: State): Promise<void> {
    const cached = state.record!;
    const fresh = await this.deps.writes.getRecord(cached.metadata.namespace, cached.metadata.name);
    if (!fresh || fresh.status?.instanceID !== cached.status?.instanceID || fresh.spec.instanceName !== cached.spec.instanceName) {
      // The informer was behind: decide again on the record as it is now.
      state.record = fresh;
      state.instance = { kind: "unknown" };
      return;
    }
    const lost = cached.status!.instanceID!;
    const why = state.found ? `is ${state.found.state}${state.found.message ? `: ${state.found.message}` : ""}` : "no longer exists";
    const message = `VM ${lost} ${why}; replacing it`;
    state.log.warn({ instanceId: lost }, message);
    this.#event(state, "Warning", "VMLost", message);
    vmOperations.inc({ op: "replace", result: "ok" });
    if (state.found) await this.deps.provider.delete(lost);
    await this.deps.writes.setPodCondition(state.pod!, "False", "VMLost", message);
    state.vmReady = false;
    let record = await this.deps.writes.patchRecordSpec(fresh, { instanceName: nextInstanceName(fresh.spec.podUID, fresh.spec.instanceName) });
    record = await this.deps.writes.patchRecordStatus(record, { phase: "Creating", instanceID: null, address: null, agentEndpoint: null, readyTime: null, message });
    state.record = record;
    state.found = undefined;
    state.instance = { kind: "unknown" };
  }

  /** Deletes every VM tagged with the record's pod UID (so one made by a create whose answer was lost goes too), then releases the record. */
  async #teardown(state: State): Promise<void> {
    this.#markedReady.delete(state.key);
    this.deps.budget?.release(state.key);
    let record = state.record!;
    try {
      if (record.status?.phase !== "Deleting") record = await this.deps.writes.patchRecordStatus(record, { phase: "Deleting" });
    } catch (error) {
      if (apiStatus(error) !== 404) throw error;
      state.record = undefined;
      return;
    }
    const ids = new Set<string>();
    try {
      const tagged = await this.deps.provider.list({ [TAG.cluster]: this.deps.clusterId, [TAG.podUid]: record.spec.podUID });
      for (const instance of tagged) ids.add(instance.id);
      if (record.status?.instanceID) ids.add(record.status.instanceID);
      for (const id of ids) await this.deps.provider.delete(id);
    } catch (error) {
      await this.#failed(state, "delete", error);
      throw error;
    }
    for (const id of ids) {
      vmOperations.inc({ op: "delete", result: "ok" });
      this.#event(state, "Normal", "VMDeleted", `VM ${id} deleted`);
    }
    await this.deps.writes.releaseRecord(record);
    state.log.info({ instanceIds: [...ids] }, ids.size ? "VM deleted, record released" : "record released (no VM)");
    state.record = undefined;
    state.instance = { kind: "unknown" };
    state.found = undefined;
  }

  /** A failed provider call: counted, an Event with the reason, the record Failed with the message. */
  async #failed(state: State, op: "create" | "delete", error: unknown): Promise<void> {
    const kind = errorKind(error);
    vmOperations.inc({ op, result: kind === "quota" ? "quota" : "error" });
    const message = `${op} VM failed${kind === "quota" ? " (cloud quota reached)" : ""}: ${(error as Error).message}`;
    const reason = kind === "quota" ? "VMQuotaExceeded" : op === "create" ? "VMCreateFailed" : "VMDeleteFailed";
    state.log.warn({ err: error, kind }, message);
    this.#event(state, "Warning", reason, message);
    if (!state.record) return;
    await this.deps.writes
      .patchRecordStatus(state.record, { phase: op === "create" ? "Failed" : "Deleting", message })
      .then((record) => (state.record = record))
      .catch((patchError: unknown) => state.log.warn({ err: patchError }, "could not record the failure on the PeerPod"));
  }

  #event(state: State, type: EventType, reason: string, message: string): void {
    const [namespace, name] = splitKey(state.key);
    const { uid = state.record?.spec.podUID, resourceVersion } = state.pod?.metadata ?? {};
    this.deps.events.record(eventTarget(POD, { namespace, name, uid, resourceVersion }), type, reason, message);
  }
}

function present(instance: Instance): InstanceFacts {
  return { kind: "present", state: instance.state, ready: instance.ready, pooled: instance.tags[TAG.pool] !== undefined };
}

export function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/** The VM the worker asks for a pod: the type and the instance name its record holds. */
export function podInstanceSpec(pod: V1Pod, record: PeerPod, policy: CompiledPolicy, clusterId: string): InstanceSpec {
  const type = policy.instanceTypes.get(record.spec.instanceType);
  if (!type) throw new ProviderError("invalid", `instance type "${record.spec.instanceType}" is not in the policy's catalog`);
  const owner = { podUID: record.spec.podUID, namespace: pod.metadata?.namespace, name: pod.metadata?.name, command: podCommand(pod) };
  return instanceSpecFor(clusterId, record.spec.instanceName, type, owner);
}
