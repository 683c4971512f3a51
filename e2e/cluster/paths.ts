import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The Go module whose mains build etcd and the Kubernetes control plane. */
export const GO_MODULE_DIR = dirname(fileURLToPath(import.meta.url));

export const KWOK_MODULE = "sigs.k8s.io/kwok";
export const KWOK_VERSION = "v0.8.0";

/** Helm, for the chart's e2e (e2e/helm.e2e.ts); `go install` builds it with the dependencies its own go.mod pins. */
export const HELM_MODULE = "helm.sh/helm/v4";
export const HELM_VERSION = "v4.3.2";

/** The Kubernetes release pinned by go.mod (`k8s.io/kubernetes vX.Y.Z`): the one source of the version. */
export const KUBERNETES_VERSION = pinnedVersion(readFileSync(join(GO_MODULE_DIR, "go.mod"), "utf8"), "k8s.io/kubernetes");

export const CONTROL_PLANE_BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"] as const;
export type ControlPlaneBinary = (typeof CONTROL_PLANE_BINARIES)[number];

export const cacheDir = (): string => process.env.PEERPODS_CACHE_DIR || join(homedir(), ".cache", "peerpods");
export const controlPlaneDir = (): string => join(cacheDir(), `cluster-${KUBERNETES_VERSION}`);
export const kwokDir = (): string => join(cacheDir(), `kwok-${KWOK_VERSION}`);
export const helmDir = (): string => join(cacheDir(), `helm-${HELM_VERSION}`);

export const binaryPath = (name: ControlPlaneBinary): string => join(controlPlaneDir(), name);
export const kwokBinary = (): string => join(kwokDir(), "kwok");
export const helmBinary = (): string => join(helmDir(), "helm");
/** KWOK's "fast" node and pod stages (plus the lease heartbeat), one multi-document YAML. */
export const kwokStagesFile = (): string => join(kwokDir(), "stages.yaml");
/** Where `npm run cluster:up` records the running developer cluster. */
export const devClusterFile = (): string => join(cacheDir(), "dev-cluster.json");

function pinnedVersion(goMod: string, module: string): string {
  const match = new RegExp(`^\\s*${module.replaceAll(".", "\\.")}\\s+(v\\d+\\.\\d+\\.\\d+)\\s*$`, "m").exec(goMod);
  if (!match?.[1]) throw new Error(`e2e/cluster/go.mod does not require ${module}`);
  return match[1];
}
