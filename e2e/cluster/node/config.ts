/**
 * The real node's configuration files, as pure functions of where things are: containerd's
 * (config v3), the kubelet's (KubeletConfiguration) and the CNI network's (bridge + host-local).
 * Everything containerd and the kubelet keep lives under the node's folder, except what they
 * hard-code (see host-state.ts).
 */
import { join } from "node:path";
import { stringify } from "yaml";

/** Where a node keeps its files, all under one folder of the run's temp folder. */
export interface NodeLayout {
  dir: string;
  containerdConfig: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  /** runc's state (its default, /run/containerd/runc, would be shared with any other containerd). */
  runcRoot: string;
  cniConfDir: string;
  /** host-local's allocations (its default is /var/lib/cni/networks). */
  ipamDir: string;
  kubeletRoot: string;
  kubeletCertDir: string;
  kubeletConfig: string;
  kubeconfig: string;
  podLogsDir: string;
  logsDir: string;
}

export function nodeLayout(dir: string): NodeLayout {
  return {
    dir,
    containerdConfig: join(dir, "containerd", "config.toml"),
    containerdRoot: join(dir, "containerd", "root"),
    containerdState: join(dir, "containerd", "state"),
    containerdSocket: join(dir, "containerd", "containerd.sock"),
    runcRoot: join(dir, "runc"),
    cniConfDir: join(dir, "cni", "net.d"),
    ipamDir: join(dir, "cni", "ipam"),
    kubeletRoot: join(dir, "kubelet"),
    kubeletCertDir: join(dir, "kubelet-pki"),
    kubeletConfig: join(dir, "kubelet-config.yaml"),
    kubeconfig: join(dir, "kubelet.kubeconfig"),
    podLogsDir: join(dir, "pod-logs"),
    logsDir: join(dir, "logs"),
  };
}

export interface ContainerdInputs {
  layout: NodeLayout;
  runcBinary: string;
  cniBinDir: string;
  sandboxImage: string;
  /** CRI runtime handlers; each runs pods with runc (the first is the default) unless `runtimeTypes` names its shim. */
  handlers: string[];
  /** Handler → containerd runtime type of a shim other than runc's (e.g. peerpods → io.containerd.peerpods.v2). */
  runtimeTypes?: Record<string, string>;
}

const quote = (value: string): string => JSON.stringify(value);

/**
 * containerd's config (version 4, containerd 2.4's own: a version 3 file is migrated at every start
 * with a warning; 4 moves the socket addresses into server plugins): CRI with runc on cgroupfs,
 * overlayfs, and nothing under /var/lib/containerd, /run/containerd/containerd.sock*, /opt or /run/nri.
 */
export function containerdConfig({ layout, runcBinary, cniBinDir, sandboxImage, handlers, runtimeTypes = {} }: ContainerdInputs): string {
  const runtimes = handlers.map((handler) =>
    runtimeTypes[handler]
      ? `
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.${quote(handler)}]
  runtime_type = ${quote(runtimeTypes[handler])}
`
      : `
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.${quote(handler)}]
  runtime_type = "io.containerd.runc.v2"
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.${quote(handler)}.options]
  BinaryName = ${quote(runcBinary)}
  Root = ${quote(layout.runcRoot)}
  SystemdCgroup = false
`,
  );
  return `version = 4
root = ${quote(layout.containerdRoot)}
state = ${quote(layout.containerdState)}
# snapshotters and services a CRI node of this kind does not use
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]

[plugins.'io.containerd.server.v1.grpc']
  address = ${quote(layout.containerdSocket)}

[plugins.'io.containerd.server.v1.ttrpc']
  address = ${quote(`${layout.containerdSocket}.ttrpc`)}

[plugins.'io.containerd.internal.v1.opt']
  path = ${quote(join(layout.dir, "containerd", "opt"))}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = ${quote(sandboxImage)}

[plugins.'io.containerd.cri.v1.runtime']
  # root here lacks CAP_SYS_RESOURCE: without this every sandbox fails writing oom_score_adj
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = ${quote(handlers[0] ?? "runc")}
${runtimes.join("")}
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = [${quote(cniBinDir)}]
  conf_dir = ${quote(layout.cniConfDir)}
  max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`;
}

export interface NetworkInputs {
  layout: NodeLayout;
  bridge: string;
  subnet: string;
}

/** A bridge with the gateway on the node and host-local addresses; no masquerading (the host has no iptables). */
export function cniConfList({ layout, bridge, subnet }: NetworkInputs): string {
  return `${JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "peerpods-node",
      plugins: [
        { type: "bridge", bridge, isGateway: true, ipMasq: false, hairpinMode: true, ipam: { type: "host-local", ranges: [[{ subnet }]], dataDir: layout.ipamDir } },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  )}\n`;
}

export interface KubeletInputs {
  layout: NodeLayout;
  /** The loopback address the node's name resolves to: the apiserver reaches the kubelet there. */
  address: string;
  port: number;
  healthzPort: number;
}

/**
 * The kubelet on a cgroup v1 host with cgroupfs, serving only on loopback. The apiserver has no
 * kubelet client certificate, so logs and exec are allowed to anyone who reaches that address.
 */
export function kubeletConfig({ layout, address, port, healthzPort }: KubeletInputs): string {
  return stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address,
    port,
    healthzBindAddress: "127.0.0.1",
    healthzPort,
    readOnlyPort: 0,
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: "AlwaysAllow" },
    containerRuntimeEndpoint: `unix://${layout.containerdSocket}`,
    cgroupDriver: "cgroupfs",
    failCgroupV1: false,
    failSwapOn: false,
    podLogsDir: layout.podLogsDir,
    clusterDomain: "cluster.local",
    // a test node: a short status and sync rhythm, no disk-pressure evictions of the host's disk
    nodeStatusUpdateFrequency: "2s",
    nodeStatusReportFrequency: "10s",
    syncFrequency: "5s",
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
    // the local images cannot be pulled again
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    maxPods: 50,
    shutdownGracePeriod: "0s",
  });
}
