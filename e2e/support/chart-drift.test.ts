import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { driftBetween, firstDifference } from "./chart-drift.js";

const helmLabels = { "app.kubernetes.io/instance": "peerpods", "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "peerpods-0.1.0", "app.kubernetes.io/version": "0.1.0" };
const service = (labels: Record<string, string>, port = 8443): KubernetesObject =>
  ({ apiVersion: "v1", kind: "Service", metadata: { name: "peerpods", namespace: "ns", labels: { "app.kubernetes.io/name": "peerpods", ...labels } }, spec: { ports: [{ port }] } }) as KubernetesObject;
const webhook = (caBundle: string): KubernetesObject =>
  ({ apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration", metadata: { name: "peerpods" }, webhooks: [{ name: "w", clientConfig: { caBundle } }] }) as KubernetesObject;

describe("chart drift against kustomize", () => {
  it("ignores Helm's release labels and the listed deliberate differences, and only those", () => {
    const namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name: "ns" } };
    const secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "peerpods-tls", namespace: "ns" } };
    assert.deepEqual(driftBetween([service(helmLabels), webhook("Q0E="), secret], [service({}), webhook(""), namespace]), []);
  });

  it("names an object missing on either side and the first field that differs", () => {
    const configMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "extra", namespace: "ns" } };
    assert.deepEqual(driftBetween([service({}, 9443), configMap], [service({}), webhook("")]), [
      "Service/ns/peerpods differs at /spec/ports/0/port: chart 9443, kustomize 8443",
      "ConfigMap/ns/extra: only in the chart",
      "MutatingWebhookConfiguration/peerpods: only in kustomize",
    ]);
    assert.deepEqual(driftBetween([service({ tier: "x" })], [service({})]), ['Service/ns/peerpods differs at /metadata/labels/tier: chart "x", kustomize undefined']);
  });

  it("refuses a render with the same object twice", () => {
    assert.throws(() => driftBetween([service({}), service({})], []), /chart renders Service\/ns\/peerpods twice/);
  });

  it("firstDifference: empty when equal, the path where arrays or types diverge", () => {
    assert.equal(firstDifference({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), "");
    assert.equal(firstDifference({ a: [1] }, { a: [1, 2] }), "/a/1: chart undefined, kustomize 2");
    assert.equal(firstDifference({ a: [1] }, { a: { 0: 1 } }), '/a: chart [1], kustomize {"0":1}');
  });
});
