import type { Logger } from "../log/logger.js";
import type { AdmissionResult } from "../metrics/admission.js";
import { podKey } from "../kube/pod.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { mutatePod } from "./mutate.js";
import type { AdmissionRequest, AdmissionResponse } from "./review.js";

export interface Admission {
  response: AdmissionResponse;
  result: AdmissionResult;
}

/** Decides one AdmissionRequest under the policy in force and logs the decision with the pod's namespace/name. */
export function admit(request: AdmissionRequest, policy: CompiledPolicy, log: Logger): Admission {
  const { uid } = request;
  if (request.operation !== "CREATE" || request.subResource) {
    return { response: { uid, allowed: true }, result: "skipped" };
  }
  const pod = request.object!;
  const namespace = request.namespace || pod.metadata?.namespace || "default";
  const outcome = mutatePod(pod, namespace, policy);
  const podName = podKey(namespace, { ...pod.metadata, name: request.name || pod.metadata?.name });
  switch (outcome.kind) {
    case "skip":
      return { response: { uid, allowed: true }, result: "skipped" };
    case "deny":
      log.info({ pod: podName, dryRun: Boolean(request.dryRun), reason: outcome.message }, "peer pod denied");
      return { response: { uid, allowed: false, status: { code: 403, reason: "Forbidden", message: `peerpods: ${outcome.message}` } }, result: "denied" };
    case "patch": {
      log.info(
        { pod: podName, dryRun: Boolean(request.dryRun), instanceType: outcome.instanceType.name, forced: outcome.forced, policyGeneration: policy.generation },
        "peer pod mutated",
      );
      if (outcome.patch.length === 0) return { response: { uid, allowed: true }, result: "mutated" };
      const patch = Buffer.from(JSON.stringify(outcome.patch)).toString("base64");
      return { response: { uid, allowed: true, patchType: "JSONPatch", patch }, result: "mutated" };
    }
  }
}
