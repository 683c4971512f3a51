import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { kubeletReadinessStages } from "./kwok-readiness.js";

/** KWOK v0.8.0's pod-ready stage, cut to the parts the rewrite touches. */
const UPSTREAM = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  next:
    statusTemplate: |
      {{ $now := Now }}

      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}

      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec: {}
`;

type Stage = { metadata: { name: string }; spec: { selector?: { matchExpressions: { key: string; operator: string; values?: string[] }[] }; next?: { statusTemplate?: string } } };

const stages = (text: string): Stage[] => parseAllDocuments(text).map((d) => d.toJS() as Stage);

describe("KWOK stages with kubelet readiness", () => {
  const result = stages(kubeletReadinessStages(UPSTREAM));

  it("pod-ready no longer sets readiness gates, and sets Ready False while a pod has any", () => {
    const template = result.find((s) => s.metadata.name === "pod-ready")!.spec.next!.statusTemplate!;
    assert.doesNotMatch(template, /range \.spec\.readinessGates/);
    assert.match(template, /\{\{ if \.spec\.readinessGates \}\}\n- lastTransitionTime: [^\n]+\n {2}status: "False"\n {2}reason: ReadinessGatesNotReady/);
    assert.match(template, /\{\{ else \}\}\n- lastTransitionTime: [^\n]+\n {2}status: "True"\n {2}type: Ready\n\{\{ end \}\}/);
    assert.match(template, /type: Initialized[\s\S]*type: ContainersReady[\s\S]*phase: Running/);
  });

  it("keeps the other stages and adds the two that make Ready follow the gates", () => {
    assert.deepEqual(
      result.map((s) => s.metadata.name),
      ["pod-ready", "pod-complete", "pod-readiness-gates-true", "pod-readiness-gate-false"],
    );
    const [toTrue, toFalse] = result.slice(2);
    const gateQuery = (stage: Stage) => stage.spec.selector!.matchExpressions.find((e) => e.key.includes("readinessGates[]"))!;
    assert.deepEqual([gateQuery(toTrue!).operator, gateQuery(toTrue!).values], ["In", ["0"]]);
    assert.deepEqual([gateQuery(toFalse!).operator, gateQuery(toFalse!).values], ["NotIn", ["0"]]);
    assert.match(toTrue!.spec.next!.statusTemplate!, /status: "True"\n {2}type: Ready/);
    assert.match(toFalse!.spec.next!.statusTemplate!, /status: "False"\n {2}type: Ready/);
  });

  it("refuses a pod-ready stage it does not recognise instead of running KWOK's own", () => {
    assert.throws(() => kubeletReadinessStages(UPSTREAM.replace("{{ range .spec.readinessGates }}", "")), /KWOK version/);
    assert.throws(() => kubeletReadinessStages("apiVersion: v1\nkind: Stage\nmetadata:\n  name: other\n"), /KWOK version/);
  });
});
