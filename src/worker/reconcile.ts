import type { V1Pod } from "@kubernetes/client-node";
import type { PeerPod } from "../kube/peerpod.js";
import type { HandlerResult } from "../kube/work-queue.js";
import type { Logger } from "../log/logger.js";
import type { Instance } from "../providers/types.js";
import { decide, podFacts, recordFacts, type Action } from "./decide.js";
import { claimInstance } from "./lifecycle/claim.js";
import { createInstance } from "./lifecycle/launch.js";
import { markReady } from "./lifecycle/ready.js";
import { createRecord } from "./lifecycle/record.js";
import { isRefusal, refuse } from "./lifecycle/refuse.js";
import { lookUpInstance, refreshRecord } from "./lifecycle/refresh.js";
import { replaceInstance } from "./lifecycle/replace.js";
import { newState, setFound, type State, type StepDeps } from "./lifecycle/step.js";
import { teardown } from "./lifecycle/teardown.js";

/** An informer's view by `namespace/name` key. */
export interface KeyedView<T> {
  get(key: string): T | undefined;
}

/** The ready watcher, as a reconcile uses it. */
export interface ReadyWaits {
  /** Asks to be woken when this booting VM is ready (or gone). */
  wait(key: string, instanceId: string): void;
  /** The pod's VM as the watcher last listed it, if it woke this key; saves asking the cloud again. */
  take(key: string): Instance | undefined;
}

/** The garbage collector, as a reconcile uses it. */
export interface Revisits {
  /** Whether a cloud listing missed this pod's VM since the last reconcile (consumed by the call). */
  mustVerify(key: string): boolean;
}

export interface ReconcilerDeps extends Omit<StepDeps, "readyMarks"> {
  pods: KeyedView<V1Pod>;
  records: KeyedView<PeerPod>;
  ready: ReadyWaits;
  revisits?: Revisits;
  log: Logger;
}

/** A booting VM is looked at again after this long even if the ready watcher never calls. */
const READY_FALLBACK_MS = 30_000;

/** More steps than a full create takes; beyond this the key is requeued rather than looping. */
const MAX_STEPS = 10;

/** The steps that ask for the pod's VM: a refusal there ends its attempts (see lifecycle/refuse.ts); elsewhere it is retried. */
const REFUSABLE: Partial<Record<Action["kind"], "create" | "claim">> = { createInstance: "create", claimInstance: "claim" };

/**
 * Brings one pod's VM to the state its pod needs, one decided step at a time (the steps are in
 * lifecycle/). Every step is idempotent, so a crash between any two of them is repaired by the
 * next reconcile.
 */
export class Reconciler {
  readonly #steps: StepDeps;

  constructor(private readonly deps: ReconcilerDeps) {
    this.#steps = { ...deps, readyMarks: new Map() };
  }

  async reconcile(key: string): Promise<HandlerResult> {
    const state = newState(key, this.deps.pods.get(key), this.deps.records.get(key), this.deps.log, this.deps.revisits?.mustVerify(key));
    const listed = this.deps.ready.take(key);
    if (listed && listed.id === state.record?.status?.instanceID) setFound(state, listed);
    for (let step = 0; step < MAX_STEPS; step++) {
      const action = this.#decide(state);
      if (action.kind === "none") return;
      if (action.kind === "waitReady") {
        this.deps.ready.wait(key, state.found!.id);
        return { requeueAfterMs: READY_FALLBACK_MS };
      }
      if (action.kind === "waitStopped") return { requeueAfterMs: action.afterMs };
      try {
        await this.#act(action, state);
      } catch (error) {
        const op = REFUSABLE[action.kind];
        if (!op || !isRefusal(error)) throw error;
        await refuse(this.#steps, state, op, error);
        return;
      }
      if (state.requeueAfterMs !== undefined) return { requeueAfterMs: state.requeueAfterMs };
    }
    return { requeueAfterMs: 100 };
  }

  #decide(state: State): Action {
    const policy = this.deps.policy();
    const pod = state.pod && podFacts(state.pod, policy);
    if (pod && state.vmReady !== undefined) pod.vmReady = state.vmReady;
    const { record } = state;
    if (!record) return decide(pod, undefined, state.instance);
    const instanceID = record.status?.instanceID;
    const context = {
      pooled: this.deps.pool?.serves(record.spec.instanceType) ?? false,
      fresh: record !== state.cached,
      markedReadyHere: Boolean(instanceID) && this.#steps.readyMarks.get(state.key) === instanceID,
    };
    return decide(pod, recordFacts(record, context), state.instance);
  }

  async #act(action: Exclude<Action, { kind: "none" | "waitReady" | "waitStopped" }>, state: State): Promise<void> {
    const steps = this.#steps;
    switch (action.kind) {
      case "createRecord":
        return createRecord(steps, state);
      case "refreshRecord":
        return refreshRecord(steps, state);
      case "createInstance":
        return createInstance(steps, state, action.from);
      case "lookUpInstance":
        return lookUpInstance(steps, state);
      case "claimInstance":
        return claimInstance(steps, state);
      case "markReady":
        return markReady(steps, state, action.patchRecord);
      case "replaceInstance":
        return replaceInstance(steps, state, action.deleteLost);
      case "teardown":
        return teardown(steps, state);
    }
  }
}
