import { ANNOTATION } from "../../kube/annotations.js";
import { instanceName } from "../../kube/peerpod.js";
import type { State, StepDeps } from "./step.js";

/** The PeerPod record comes first, before any VM: after a crash it says which pod a VM is for. */
export async function createRecord(deps: Pick<StepDeps, "writes" | "policy" | "provider">, state: State): Promise<void> {
  const pod = state.pod!;
  const uid = pod.metadata!.uid!;
  const policy = deps.policy();
  let instanceType = pod.metadata?.annotations?.[ANNOTATION.instanceType];
  if (!instanceType) {
    instanceType = policy.spec.defaultInstanceType ?? policy.byPreference[0]!.name;
    state.log.warn({ instanceType }, "pod has no instance type annotation (was the webhook bypassed?); using the default");
  }
  state.record = await deps.writes.createRecord(pod, {
    podUID: uid,
    nodeName: pod.spec!.nodeName!,
    instanceType,
    provider: deps.provider.name,
    instanceName: instanceName(uid),
  });
  state.log.debug({ instanceType }, "PeerPod recorded");
}
