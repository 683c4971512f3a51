/**
 * The real node's part of `npm run cluster:build`: kubelet (from the control plane's module),
 * containerd with ctr and its runc shim, runc, the CNI plugins (each `go install`ed at its pinned
 * release), and the pause and busybox images. Each goes into its own stamped cache folder.
 */
import { join } from "node:path";
import { buildStamped, goBuild, goInstall, hash, hashFiles, type Stamped } from "../build-steps.js";
import { GO_MODULE_DIR, KUBERNETES_VERSION } from "../paths.js";
import { BUSYBOX_PACKAGE, busyboxCandidate, writeBusyboxImage, writePauseImage } from "./images.js";
import {
  CNI_PLUGIN_PACKAGES,
  CNI_PLUGINS,
  CONTAINERD,
  RUNC,
  cniBinaries,
  cniDir,
  containerdBinary,
  containerdDir,
  kubeletBinary,
  kubeletDir,
  nodeImageArchive,
  nodeImagesDir,
  runcBinary,
  runcDir,
} from "./paths.js";

/** Everything that changes the local module's node binaries. */
const moduleFiles = (main: string): string[] => [join(GO_MODULE_DIR, "go.mod"), join(GO_MODULE_DIR, "go.sum"), join(GO_MODULE_DIR, "cmd", main, "main.go")];
const SOURCES = ["./build.ts", "./images.ts", "./oci.ts"].map((file) => new URL(file, import.meta.url).pathname);

async function kubelet(go: string): Promise<Stamped> {
  const flags = ["-ldflags", `-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}`];
  return {
    title: `kubelet ${KUBERNETES_VERSION}`,
    dir: kubeletDir(),
    key: await hashFiles([go, ...flags], moduleFiles("kubelet")),
    outputs: [kubeletBinary()],
    build: () => goBuild("go build kubelet", GO_MODULE_DIR, "./cmd/kubelet", kubeletBinary(), flags),
  };
}

function containerd(go: string): Stamped {
  const at = (cmd: string): string => `${CONTAINERD.module}/cmd/${cmd}@${CONTAINERD.version}`;
  const version = ["-ldflags", `-s -w -X ${CONTAINERD.module}/version.Version=${CONTAINERD.version.slice(1)}`];
  // the shim runs once per pod: static, and without the gRPC server it does not use
  const shimFlags = ["-tags", "urfave_cli_no_docs no_grpc", ...version];
  return {
    title: `containerd ${CONTAINERD.version}`,
    dir: containerdDir(),
    key: hash([go, ...version, ...shimFlags, CONTAINERD.module, CONTAINERD.version]),
    outputs: [containerdBinary("containerd"), containerdBinary("ctr"), containerdBinary("containerd-shim-runc-v2")],
    build: async () => {
      await goInstall({ label: "go install containerd, ctr", packages: [at("containerd"), at("ctr")], dir: containerdDir(), flags: ["-tags", "urfave_cli_no_docs", ...version] });
      await goInstall({ label: "go install containerd-shim-runc-v2", packages: [at("containerd-shim-runc-v2")], dir: containerdDir(), flags: shimFlags, env: { CGO_ENABLED: "0" } });
    },
  };
}

function runc(go: string): Stamped {
  // upstream's build minus `libpathrs` (a Rust library Debian 12 lacks); seccomp links Debian's libseccomp
  const flags = ["-buildmode=pie", "-tags", "seccomp urfave_cli_no_docs", "-ldflags", "-s -w"];
  return {
    title: `runc ${RUNC.version}`,
    dir: runcDir(),
    key: hash([go, ...flags, RUNC.module, RUNC.version]),
    outputs: [runcBinary()],
    build: () => goInstall({ label: "go install runc", packages: [`${RUNC.module}@${RUNC.version}`], dir: runcDir(), flags, env: { CGO_ENABLED: "1" } }),
  };
}

function cniPlugins(go: string): Stamped {
  const flags = ["-ldflags", `-s -w -X ${CNI_PLUGINS.module}/pkg/utils/buildversion.BuildVersion=${CNI_PLUGINS.version}`];
  const packages = Object.values(CNI_PLUGIN_PACKAGES).map((path) => `${CNI_PLUGINS.module}/${path}@${CNI_PLUGINS.version}`);
  return {
    title: `CNI plugins ${CNI_PLUGINS.version} (${Object.keys(CNI_PLUGIN_PACKAGES).join(", ")})`,
    dir: cniDir(),
    key: hash([go, ...flags, ...packages]),
    outputs: cniBinaries(),
    build: () => goInstall({ label: "go install CNI plugins", packages, dir: cniDir(), flags, env: { CGO_ENABLED: "0" } }),
  };
}

async function images(go: string): Promise<Stamped> {
  const busybox = await busyboxCandidate();
  const pause = join(nodeImagesDir(), "pause");
  const flags = ["-ldflags", "-s -w"];
  return {
    title: `node images (pause, busybox from ${BUSYBOX_PACKAGE} ${busybox})`,
    dir: nodeImagesDir(),
    key: await hashFiles([go, busybox, ...flags], [...moduleFiles("pause"), ...SOURCES]),
    outputs: [nodeImageArchive("pause"), nodeImageArchive("busybox")],
    build: async () => {
      await goBuild("go build pause", GO_MODULE_DIR, "./cmd/pause", pause, flags, { CGO_ENABLED: "0" });
      await writePauseImage(pause, nodeImageArchive("pause"));
      await writeBusyboxImage(busybox, nodeImageArchive("busybox"));
    },
  };
}

/** Builds whatever of the real node is not up to date, one part after the other (each `go` uses every core). */
export async function buildNode(go: string): Promise<void> {
  for (const part of [await kubelet(go), containerd(go), runc(go), cniPlugins(go), await images(go)]) await buildStamped(part);
}
