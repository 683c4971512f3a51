import { vmOperations } from "../../metrics/worker.js";
import { ProviderError, type Instance } from "../../providers/types.js";
import { podInstanceSpec } from "./launch.js";
import { setFound, type State, type StepDeps } from "./step.js";

/** Hands the recorded pool VM to the pod: its data through the agent channel, then its tags. */
export async function claimInstance(deps: Pick<StepDeps, "clusterId" | "provider" | "policy">, state: State): Promise<void> {
  const { provider } = deps;
  if (!provider.claim) throw new ProviderError("invalid", `provider ${provider.name} cannot hand a pool VM to a pod`);
  const spec = podInstanceSpec(state.pod!, state.record!, deps.policy(), deps.clusterId);
  let claimed: Instance | undefined;
  try {
    claimed = await provider.claim(state.found!.id, { name: spec.name, tags: spec.tags, userData: spec.userData });
  } catch (error) {
    if (!(error instanceof ProviderError && error.kind === "notFound")) throw error;
  }
  vmOperations.inc({ op: "claim", result: claimed ? "ok" : "gone" });
  setFound(state, claimed);
}
