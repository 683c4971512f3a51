import { vmReadySeconds } from "../../metrics/worker.js";
import { podEvent, type State, type StepDeps } from "./step.js";

/**
 * Tells the pod its VM is ready (condition True). With `patchRecord` the record says Ready too and
 * the pod gets its VMReady Event with the time since it was bound; without, only the pod's
 * condition had gone.
 */
export async function markReady(deps: Pick<StepDeps, "writes" | "events" | "bindTimes" | "readyMarks">, state: State, patchRecord: boolean): Promise<void> {
  const pod = state.pod!;
  const instance = state.found!;
  const record = state.record!;
  const [updated] = await Promise.all([
    patchRecord
      ? deps.writes.patchRecordStatus(record, {
          phase: "Ready",
          instanceID: instance.id,
          address: instance.privateIp ?? null,
          agentEndpoint: instance.agentEndpoint ?? null,
          readyTime: new Date().toISOString(),
          message: null,
        })
      : record,
    deps.writes.setPodCondition(pod, "True", "VMReady", `VM ${instance.id} is ready`),
  ]);
  state.record = updated;
  state.vmReady = true;
  if (!patchRecord) return;
  deps.readyMarks.set(state.key, instance.id);
  const seconds = Math.max(0, (Date.now() - deps.bindTimes.boundAt(state.key, pod)) / 1000);
  vmReadySeconds.observe(seconds);
  podEvent(deps, state, "Normal", "VMReady", `VM ${instance.id} (${record.spec.instanceType}) ready ${seconds.toFixed(1)}s after the pod was bound`);
  state.log.info({ instanceId: instance.id, seconds }, "VM ready");
}
