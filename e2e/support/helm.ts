import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { KubernetesObject } from "@kubernetes/client-node";
import { helmBinary } from "../cluster/paths.js";
import { MANIFESTS_DIR, parseObjects } from "./manifests.js";
import { trackedTempDir } from "./leftovers.js";

/** The chart (manifests/chart/). */
export const CHART_DIR = join(MANIFESTS_DIR, "chart");

let home: string | undefined;

/** Helm's config, cache and data folders, one per run (removed at exit), so nothing lands in ~/.config/helm. */
const helmHome = (): string => (home ??= trackedTempDir("peerpods-e2e-helm-"));

export interface HelmOptions {
  /** Admin kubeconfig, for commands that talk to the cluster. */
  kubeconfig?: string;
  /** Values (written to Helm's stdin as `-f -`). */
  values?: object;
}

/** Runs the helm that `npm run cluster:build` built; resolves with its stdout, rejects with its stderr. */
export async function helm(args: string[], { kubeconfig, values }: HelmOptions = {}): Promise<string> {
  const binary = helmBinary();
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run npm run cluster:build`);
  const dir = helmHome();
  const env = {
    ...process.env,
    HELM_CONFIG_HOME: join(dir, "config"),
    HELM_CACHE_HOME: join(dir, "cache"),
    HELM_DATA_HOME: join(dir, "data"),
    ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
  };
  const fullArgs = values ? [...args, "-f", "-"] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(binary, fullArgs, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`helm ${args.join(" ")} exited ${code}:\n${withoutLinkNotes(stdout + stderr)}`))));
    child.stdin.end(values ? JSON.stringify(values) : "");
  });
}

/** Helm notes every linked file (the chart links kustomize's CRDs, DaemonSet and rules) on each load. */
const withoutLinkNotes = (output: string): string =>
  output
    .split("\n")
    .filter((line) => !line.includes("found symbolic link in path"))
    .join("\n");

/** `helm template` of the chart (a folder or a packaged .tgz) with `values`, CRDs included, as objects. */
export async function renderChart(values: object = {}, namespace = "peerpods-system", chart = CHART_DIR): Promise<KubernetesObject[]> {
  return parseObjects(await helm(["template", "peerpods", chart, "--namespace", namespace, "--include-crds"], { values }), "helm template");
}
