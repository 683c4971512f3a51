import type { CompiledPolicy } from "./compiled.js";
import type { InstanceType } from "./schema.js";
import { describeEnvelope, isEmpty, memoryMiBOf, vcpusOf, type Envelope } from "../kube/envelope.js";

export type Selection = { ok: true; instanceType: InstanceType; forced: boolean } | { ok: false; reason: string };

const fits = (type: InstanceType, e: Envelope): boolean =>
  type.vcpus >= vcpusOf(e) && type.memoryMiB >= memoryMiBOf(e) && type.gpus >= e.gpus;

const describeType = (t: InstanceType): string =>
  `${t.name} (${t.vcpus} vCPU, ${t.memoryMiB} MiB${t.gpus ? `, ${t.gpus} GPU` : ""})`;

/** The type auto-selection picks: the default for a pod with no requests, else the cheapest, then smallest, that fits. */
function autoSelect(policy: CompiledPolicy, namespace: string, envelope: Envelope): Selection {
  const allowed = policy.allowedFor(namespace);
  const defaultName = policy.spec.defaultInstanceType;
  if (isEmpty(envelope) && defaultName !== undefined && allowed.has(defaultName)) {
    const instanceType = policy.instanceTypes.get(defaultName);
    if (instanceType) return { ok: true, instanceType, forced: false };
  }
  const candidates = policy.byPreference.filter((t) => allowed.has(t.name));
  const chosen = candidates.find((t) => fits(t, envelope));
  if (chosen) return { ok: true, instanceType: chosen, forced: false };
  const largest = candidates.reduce<InstanceType | undefined>(
    (big, t) => (!big || t.vcpus * 1e6 + t.memoryMiB > big.vcpus * 1e6 + big.memoryMiB ? t : big),
    undefined,
  );
  return {
    ok: false,
    reason:
      `no instance type allowed in namespace "${namespace}" fits the pod's envelope of ${describeEnvelope(envelope)}; ` +
      (largest ? `the largest is ${describeType(largest)}. Lower the pod's requests or ask the cluster admin for a larger type` : "none is allowed"),
  };
}

/**
 * Chooses the pod's instance type. `requested` is the value of the machine_type annotation, if any:
 * honoured only when the policy allows the annotation, the type is allowed in the namespace and it fits.
 * A request that names exactly what auto-selection picks is always accepted (it asks for nothing extra).
 */
export function selectInstanceType(policy: CompiledPolicy, namespace: string, envelope: Envelope, requested?: string): Selection {
  const auto = autoSelect(policy, namespace, envelope);
  if (requested === undefined || (auto.ok && auto.instanceType.name === requested)) return auto;
  const allowedNames = [...policy.allowedFor(namespace)].sort().join(", ");
  if (!policy.spec.allowInstanceTypeAnnotation) {
    return { ok: false, reason: `the policy does not allow choosing an instance type by annotation (asked for "${requested}"); remove the annotation to get an automatic choice` };
  }
  const type = policy.instanceTypes.get(requested);
  if (!type || !policy.allowedFor(namespace).has(requested)) {
    return { ok: false, reason: `instance type "${truncate(requested)}" is not allowed in namespace "${namespace}"; allowed types: ${allowedNames}` };
  }
  if (!fits(type, envelope)) {
    return { ok: false, reason: `instance type ${describeType(type)} is smaller than the pod's envelope of ${describeEnvelope(envelope)}` };
  }
  return { ok: true, instanceType: type, forced: true };
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
