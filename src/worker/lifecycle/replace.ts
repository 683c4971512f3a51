import { nextInstanceName } from "../../kube/peerpod.js";
import { vmOperations } from "../../metrics/worker.js";
import { forgetInstance, podEvent, type State, type StepDeps } from "./step.js";

/**
 * The VM vanished or is dying behind peerpods' back: the pod is told, what is left of the VM is
 * deleted (`deleteLost`), and a new one is asked for under a new idempotency key.
 */
export async function replaceInstance(deps: Pick<StepDeps, "provider" | "writes" | "events">, state: State, deleteLost: boolean): Promise<void> {
  const record = state.record!;
  const lost = record.status!.instanceID!;
  const found = state.found;
  const why = found ? `is ${found.state}${found.message ? `: ${found.message}` : ""}` : "no longer exists";
  const message = `VM ${lost} ${why}; replacing it`;
  state.log.warn({ instanceId: lost }, message);
  podEvent(deps, state, "Warning", "VMLost", message);
  vmOperations.inc({ op: "replace", result: "ok" });
  if (deleteLost) await deps.provider.delete(lost);
  await deps.writes.setPodCondition(state.pod!, "False", "VMLost", message);
  state.vmReady = false;
  const renamed = await deps.writes.patchRecordSpec(record, { instanceName: nextInstanceName(record.spec.podUID, record.spec.instanceName) });
  state.record = await deps.writes.patchRecordStatus(renamed, { phase: "Creating", instanceID: null, address: null, agentEndpoint: null, readyTime: null, message });
  forgetInstance(state);
}
