import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";

/**
 * Compares what the Helm chart renders with what kustomize renders: the same objects (kind,
 * namespace, name) with the same content, apart from Helm's release labels and the deliberate
 * differences below, which are the one list of them.
 */

/** Labels every object of the chart carries for Helm (kustomize's app.kubernetes.io/name is compared). */
export const HELM_LABELS = ["app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"];

type Side = "chart" | "kustomize";
type Loose = KubernetesObject & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Difference {
  what: string;
  why: string;
  /** The object as compared (a copy it may change), or undefined to leave it out. */
  normalise(object: Loose, side: Side): Loose | undefined;
}

export const DELIBERATE_DIFFERENCES: Difference[] = [
  {
    what: "Namespace peerpods-system: kustomize only",
    why: "Helm keeps the release's record in its namespace, so that namespace exists before the chart (`--create-namespace`) and cannot be one of its objects; `helm uninstall` leaves it",
    normalise: (object, side) => (side === "kustomize" && object.kind === "Namespace" ? undefined : object),
  },
  {
    what: "Secret peerpods-tls: chart only (certs.mode helm, the default)",
    why: "the chart generates the serving certificate at install and keeps it across upgrades; with kustomize `peerpods certs` makes it and `kubectl create secret tls` stores it",
    normalise: (object, side) => (side === "chart" && object.kind === "Secret" && object.metadata?.name === "peerpods-tls" ? undefined : object),
  },
  {
    what: "MutatingWebhookConfiguration peerpods: webhooks[].clientConfig.caBundle",
    why: "the chart fills in its CA (certs.mode helm or existing); kustomize's is empty until `peerpods certs --inject` writes it, and cert-manager's cainjector fills it in both",
    normalise: (object) => {
      if (object.kind !== "MutatingWebhookConfiguration") return object;
      for (const webhook of object.webhooks ?? []) delete webhook.clientConfig?.caBundle;
      return object;
    },
  },
];

const keyOf = (object: KubernetesObject): string => [object.kind, object.metadata?.namespace, object.metadata?.name].filter(Boolean).join("/");

function withoutHelmLabels(object: Loose): Loose {
  const labels = object.metadata?.labels;
  if (labels) for (const label of HELM_LABELS) delete labels[label];
  return object;
}

function normalised(objects: KubernetesObject[], side: Side): Map<string, Loose> {
  const result = new Map<string, Loose>();
  for (const original of objects) {
    let object: Loose | undefined = withoutHelmLabels(structuredClone(original) as Loose);
    for (const difference of DELIBERATE_DIFFERENCES) object = object && difference.normalise(object, side);
    if (!object) continue;
    if (result.has(keyOf(object))) throw new Error(`${side} renders ${keyOf(object)} twice`);
    result.set(keyOf(object), object);
  }
  return result;
}

/** The JSON pointer of the first place where `a` and `b` differ, with both values ("" when equal). */
export function firstDifference(a: unknown, b: unknown, path = ""): string {
  if (isDeepStrictEqual(a, b)) return "";
  if (a && b && typeof a === "object" && typeof b === "object" && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const key of keys) {
      const found = firstDifference((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${path}/${key}`);
      if (found) return found;
    }
  }
  return `${path || "/"}: chart ${JSON.stringify(a)}, kustomize ${JSON.stringify(b)}`;
}

/** Every drift between the two renders, one line each (empty when they match). */
export function driftBetween(chart: KubernetesObject[], kustomize: KubernetesObject[]): string[] {
  const fromChart = normalised(chart, "chart");
  const fromKustomize = normalised(kustomize, "kustomize");
  const drift: string[] = [];
  for (const [key, object] of fromChart) {
    const other = fromKustomize.get(key);
    if (!other) drift.push(`${key}: only in the chart`);
    else if (!isDeepStrictEqual(object, other)) drift.push(`${key} differs at ${firstDifference(object, other)}`);
  }
  for (const key of fromKustomize.keys()) if (!fromChart.has(key)) drift.push(`${key}: only in kustomize`);
  return drift;
}
