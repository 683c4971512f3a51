/**
 * `npm run cluster:build`: builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK
 * from Go modules into the cache folder, copies KWOK's stage definitions next to it, builds Helm
 * (for the chart's e2e), and builds the real node (kubelet, containerd, runc, CNI plugins, pause and busybox images).
 * Idempotent: each folder carries a stamp of its inputs, and a matching stamp skips the build.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { buildStamped, elapsed, goBuild, goInstall, goVersion, hash, hashFiles, run, say } from "./build-steps.js";
import { buildNode } from "./node/build.js";
import {
  CONTROL_PLANE_BINARIES,
  GO_MODULE_DIR,
  HELM_MODULE,
  HELM_VERSION,
  KUBERNETES_VERSION,
  KWOK_MODULE,
  KWOK_VERSION,
  binaryPath,
  controlPlaneDir,
  helmBinary,
  helmDir,
  kwokBinary,
  kwokDir,
  kwokStagesFile,
} from "./paths.js";

/** KWOK stage folders (inside its module) that the launcher loads: fast node start, lease heartbeat, fast pods. */
const KWOK_STAGE_DIRS = ["kustomize/stage/node/fast", "kustomize/stage/node/heartbeat-with-lease", "kustomize/stage/pod/fast"];

const started = Date.now();

async function buildControlPlane(go: string): Promise<void> {
  const ldflags = `-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}`;
  const files = [join(GO_MODULE_DIR, "go.mod"), join(GO_MODULE_DIR, "go.sum"), ...CONTROL_PLANE_BINARIES.map((name) => join(GO_MODULE_DIR, "cmd", name, "main.go"))];
  await buildStamped({
    title: `control plane ${KUBERNETES_VERSION}`,
    dir: controlPlaneDir(),
    key: await hashFiles([go, ldflags], files),
    outputs: CONTROL_PLANE_BINARIES.map(binaryPath),
    build: async () => {
      say(`building the control plane ${KUBERNETES_VERSION} into ${controlPlaneDir()} (a cold build takes about 10 minutes on 2 cores)`);
      await run("go mod download", "go", ["mod", "download"], { cwd: GO_MODULE_DIR });
      for (const [i, name] of CONTROL_PLANE_BINARIES.entries()) {
        await goBuild(`[${i + 1}/${CONTROL_PLANE_BINARIES.length}] go build ${name}`, GO_MODULE_DIR, `./cmd/${name}`, binaryPath(name), ["-ldflags", ldflags]);
      }
    },
  });
}

async function buildKwok(go: string): Promise<void> {
  const flags = ["-ldflags", "-s -w"];
  await buildStamped({
    title: `kwok ${KWOK_VERSION}`,
    dir: kwokDir(),
    key: hash([go, "-s -w", `${KWOK_MODULE}@${KWOK_VERSION}`, ...KWOK_STAGE_DIRS]),
    outputs: [kwokBinary(), kwokStagesFile()],
    build: async () => {
      await goInstall({ label: `go install ${KWOK_MODULE}/cmd/kwok@${KWOK_VERSION}`, packages: [`${KWOK_MODULE}/cmd/kwok@${KWOK_VERSION}`], dir: kwokDir(), flags });
      await writeFile(kwokStagesFile(), await kwokStages());
    },
  });
}

async function buildHelm(go: string): Promise<void> {
  // Helm's release stamps its version through this variable (otherwise `helm version` says only v4.3)
  const flags = ["-ldflags", `-s -w -X ${HELM_MODULE}/internal/version.version=${HELM_VERSION}`];
  const pkg = `${HELM_MODULE}/cmd/helm@${HELM_VERSION}`;
  await buildStamped({
    title: `helm ${HELM_VERSION}`,
    dir: helmDir(),
    key: hash([go, ...flags, pkg]),
    outputs: [helmBinary()],
    build: () => goInstall({ label: `go install ${pkg}`, packages: [pkg], dir: helmDir(), flags }),
  });
}

/** The Stage documents of KWOK's stage folders, read from its module source, as one multi-document YAML. */
async function kwokStages(): Promise<string> {
  const info = JSON.parse(await run("go mod download kwok", "go", ["mod", "download", "-json", `${KWOK_MODULE}@${KWOK_VERSION}`], { cwd: kwokDir() })) as {
    Dir?: string;
    Error?: string;
  };
  if (!info.Dir) throw new Error(`go mod download ${KWOK_MODULE}@${KWOK_VERSION}: ${info.Error ?? "no module folder"}`);
  const documents: string[] = [];
  for (const stageDir of KWOK_STAGE_DIRS) {
    const folder = join(info.Dir, stageDir);
    const kustomization = parseYaml(await readFile(join(folder, "kustomization.yaml"), "utf8")) as { resources?: string[] };
    const files = kustomization.resources ?? (await readdir(folder)).filter((file) => file.endsWith(".yaml") && file !== "kustomization.yaml");
    for (const file of files) documents.push(`# from ${KWOK_MODULE}@${KWOK_VERSION}/${stageDir}/${file}\n${(await readFile(join(folder, file), "utf8")).trim()}\n`);
  }
  return documents.join("---\n");
}

try {
  const go = await goVersion();
  say(`using ${go}`);
  await buildControlPlane(go);
  await buildKwok(go);
  await buildHelm(go);
  await buildNode(go);
  say(`all built in ${elapsed(started)}`);
} catch (error) {
  console.error(`cluster:build failed after ${elapsed(started)}: ${(error as Error).message}`);
  process.exitCode = 1;
}
