import { apiStatus } from "../../kube/errors.js";
import { vmOperations } from "../../metrics/worker.js";
import { TAG } from "../../providers/types.js";
import { forgetInstance, podEvent, recordFailure, type State, type StepDeps } from "./step.js";

/** Deletes every VM tagged with the record's pod UID (so one made by a create whose answer was lost goes too), then releases the record. */
export async function teardown(deps: Pick<StepDeps, "clusterId" | "provider" | "writes" | "events" | "budget" | "readyMarks" | "signal">, state: State): Promise<void> {
  deps.readyMarks.delete(state.key);
  deps.budget?.release(state.key);
  let record = state.record!;
  try {
    if (record.status?.phase !== "Deleting") record = await deps.writes.patchRecordStatus(record, { phase: "Deleting" });
  } catch (error) {
    if (apiStatus(error) !== 404) throw error;
    state.record = undefined;
    return;
  }
  const ids = new Set<string>();
  try {
    const tagged = await deps.provider.list({ [TAG.cluster]: deps.clusterId, [TAG.podUid]: record.spec.podUID });
    for (const instance of tagged) ids.add(instance.id);
    if (record.status?.instanceID) ids.add(record.status.instanceID);
    for (const id of ids) await deps.provider.delete(id);
  } catch (error) {
    await recordFailure(deps, state, "delete", error);
    throw error;
  }
  for (const id of ids) {
    vmOperations.inc({ op: "delete", result: "ok" });
    podEvent(deps, state, "Normal", "VMDeleted", `VM ${id} deleted`);
  }
  await deps.writes.releaseRecord(record);
  state.log.info({ instanceIds: [...ids] }, ids.size ? "VM deleted, record released" : "record released (no VM)");
  state.record = undefined;
  forgetInstance(state);
}
