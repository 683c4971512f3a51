import { forgetInstance, setFound, type State, type StepDeps } from "./step.js";

/**
 * Replaces the informer's copy of the record with the apiserver's. What is known of the VM stays
 * only while the record still names the same one.
 */
export async function refreshRecord(deps: Pick<StepDeps, "writes">, state: State): Promise<void> {
  const cached = state.record!;
  const fresh = await deps.writes.getRecord(cached.metadata.namespace, cached.metadata.name);
  state.record = fresh;
  const sameVm = fresh?.status?.instanceID === cached.status?.instanceID && fresh?.spec.instanceName === cached.spec.instanceName;
  if (!sameVm) forgetInstance(state);
}

/** Asks the cloud for the VM the record names. */
export async function lookUpInstance(deps: Pick<StepDeps, "provider">, state: State): Promise<void> {
  setFound(state, await deps.provider.get(state.record!.status!.instanceID!));
}
