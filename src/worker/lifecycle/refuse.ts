import { REFUSED_CONDITION } from "../../kube/peerpod.js";
import { vmOperations } from "../../metrics/worker.js";
import { ProviderError } from "../../providers/types.js";
import { podEvent, type State, type StepDeps } from "./step.js";

/** A ProviderError of kind "invalid": asking again cannot give the pod its VM (a type gone from the catalog, user data too large, a request the cloud rejects). */
export function isRefusal(error: unknown): error is ProviderError {
  return error instanceof ProviderError && error.kind === "invalid";
}

/**
 * Ends the attempts to give the pod a VM, saying why: one Event, the pod's vm-ready condition
 * False, and last the record Failed with its Refused condition, which decide reads as the end.
 * Deleting the pod still releases the record and any VM as usual.
 */
export async function refuse(deps: Pick<StepDeps, "writes" | "events">, state: State, op: "create" | "claim", error: ProviderError): Promise<void> {
  const message = `the provider refused the pod's VM: ${error.message}`;
  vmOperations.inc({ op, result: "refused" });
  state.log.warn({ err: error }, message);
  podEvent(deps, state, "Warning", "VMRefused", message);
  await deps.writes.setPodCondition(state.pod!, "False", "VMRefused", message);
  state.vmReady = false;
  const condition = { type: REFUSED_CONDITION, status: "True" as const, reason: "ProviderInvalid", message, lastTransitionTime: new Date().toISOString() };
  state.record = await deps.writes.patchRecordStatus(state.record!, { phase: "Failed", message, conditions: [condition] });
}
