import { hostname } from "node:os";
import { join } from "node:path";
import { cacheDir, KUBERNETES_VERSION } from "../paths.js";

/** The real node's parts, pinned: built with `go install module/cmd@version` (each with its own go.mod). */
export const CONTAINERD = { module: "github.com/containerd/containerd/v2", version: "v2.4.2" } as const;
export const RUNC = { module: "github.com/opencontainers/runc", version: "v1.5.3" } as const;
export const CNI_PLUGINS = { module: "github.com/containernetworking/plugins", version: "v1.10.0" } as const;

/** The CNI plugins the node's network uses (under the plugins module), by binary name. */
export const CNI_PLUGIN_PACKAGES = { bridge: "plugins/main/bridge", "host-local": "plugins/ipam/host-local", loopback: "plugins/main/loopback", portmap: "plugins/meta/portmap" } as const;

/** Cache folders, all `node-…`: the pod VM's runtime keeps a runc of its own (static, no seccomp) beside them. */
export const kubeletDir = (): string => join(cacheDir(), `node-kubelet-${KUBERNETES_VERSION}`);
export const containerdDir = (): string => join(cacheDir(), `node-containerd-${CONTAINERD.version}`);
export const runcDir = (): string => join(cacheDir(), `node-runc-${RUNC.version}`);
export const cniDir = (): string => join(cacheDir(), `node-cni-plugins-${CNI_PLUGINS.version}`);
export const nodeImagesDir = (): string => join(cacheDir(), "node-images");

export const kubeletBinary = (): string => join(kubeletDir(), "kubelet");
export const containerdBinary = (name: "containerd" | "ctr" | "containerd-shim-runc-v2"): string => join(containerdDir(), name);
export const runcBinary = (): string => join(runcDir(), "runc");
export const cniBinaries = (): string[] => Object.keys(CNI_PLUGIN_PACKAGES).map((name) => join(cniDir(), name));

/** The local images, as OCI archives, and the names containerd knows them by. */
export const NODE_IMAGES = {
  pause: { file: "pause.oci.tar", name: "peerpods.local/pause:1" },
  // the name a pod's `image: busybox` resolves to, so pods need no registry (imagePullPolicy IfNotPresent or Never)
  busybox: { file: "busybox.oci.tar", name: "docker.io/library/busybox:latest" },
} as const;
export const nodeImageArchive = (image: keyof typeof NODE_IMAGES): string => join(nodeImagesDir(), NODE_IMAGES[image].file);

/** Every file the real node needs from cluster:build. */
export const nodeArtifacts = (): string[] => [
  kubeletBinary(),
  containerdBinary("containerd"),
  containerdBinary("ctr"),
  containerdBinary("containerd-shim-runc-v2"),
  runcBinary(),
  ...cniBinaries(),
  nodeImageArchive("pause"),
  nodeImageArchive("busybox"),
];

/**
 * The real node is named after this host: the apiserver reaches a kubelet by its node's hostname,
 * and the kubelet serves on the loopback address that name resolves to.
 */
export const realNodeName = (): string => hostname().toLowerCase();
