import { parseAllDocuments, stringify } from "yaml";

/**
 * KWOK's "fast" pod stage plays the kubelet but marks every readiness gate True on its own, so a
 * peer pod would look Ready before its VM exists. These stages do what the kubelet does instead:
 * gate conditions belong to their owners (the worker's `peerpods.io/vm-ready`), and Ready follows
 * them — True once all gates are True, False again if one drops.
 */
const GATES_NOT_TRUE = '[.spec.readinessGates[].conditionType] - [.status.conditions[] | select(.status == "True") | .type] | length';
const READY_STATUS = '.status.conditions.[] | select( .type == "Ready" ) | .status';

const GATED_READY_TEMPLATE = `{{ if .spec.readinessGates }}
- lastTransitionTime: {{ Now | Quote }}
  status: "False"
  reason: ReadinessGatesNotReady
  message: "waiting for the pod's readiness gates"
  type: Ready
{{ else }}
- lastTransitionTime: {{ Now | Quote }}
  status: "True"
  type: Ready
{{ end }}`;

const UPSTREAM_READY = /( *)- lastTransitionTime: \{\{ \$now \| Quote \}\}\n\s*status: "True"\n\s*type: Ready\n/;
const UPSTREAM_GATES = / *\{\{ range \.spec\.readinessGates \}\}[\s\S]*?\{\{ end \}\}\n/;

function readyStage(name: string, gatesNotTrue: "In" | "NotIn", readyNow: "True" | "False", status: "True" | "False"): object {
  return {
    apiVersion: "kwok.x-k8s.io/v1alpha1",
    kind: "Stage",
    metadata: { name },
    spec: {
      resourceRef: { apiGroup: "v1", kind: "Pod" },
      selector: {
        matchExpressions: [
          { key: ".metadata.deletionTimestamp", operator: "DoesNotExist" },
          { key: ".status.phase", operator: "In", values: ["Running"] },
          { key: ".spec.readinessGates", operator: "Exists" },
          { key: READY_STATUS, operator: readyNow === "True" ? "In" : "NotIn", values: ["True"] },
          { key: GATES_NOT_TRUE, operator: gatesNotTrue, values: ["0"] },
        ],
      },
      next: {
        statusTemplate: `conditions:\n- lastTransitionTime: {{ Now | Quote }}\n  status: "${status}"\n  type: Ready\n${status === "False" ? '  reason: ReadinessGatesNotReady\n' : ""}`,
      },
    },
  };
}

/** KWOK's stages file with its pod-ready stage made to respect readiness gates, plus the two stages that follow the gates. */
export function kubeletReadinessStages(upstream: string): string {
  const documents = parseAllDocuments(upstream).map((document) => document.toJS() as { metadata?: { name?: string }; spec?: { next?: { statusTemplate?: string } } });
  const podReady = documents.find((document) => document.metadata?.name === "pod-ready");
  const template = podReady?.spec?.next?.statusTemplate;
  if (!template || !UPSTREAM_READY.test(template) || !UPSTREAM_GATES.test(template)) {
    throw new Error("KWOK's pod-ready stage is not the one this file rewrites (did the KWOK version change?)");
  }
  podReady.spec!.next!.statusTemplate = template
    .replace(UPSTREAM_GATES, "")
    .replace(UPSTREAM_READY, (_match, indent: string) => GATED_READY_TEMPLATE.split("\n").map((line) => (line.startsWith("{{") ? line : indent + line)).join("\n") + "\n");
  documents.push(readyStage("pod-readiness-gates-true", "In", "False", "True"), readyStage("pod-readiness-gate-false", "NotIn", "True", "False"));
  return documents.map((document) => stringify(document)).join("---\n");
}
