import assert from "node:assert/strict";
import { hostChanges, mountsUnder, type HostState } from "./host-state.js";

const MOUNTINFO = [
  "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
  "301 22 254:0 /tmp/peerpods-node-x/kubelet /tmp/peerpods-node-x/kubelet rw shared:80 - ext4 /dev/vda rw",
  "302 301 0:55 / /tmp/peerpods-node-x/kubelet/pods/u/volumes/kube-api-access rw - tmpfs tmpfs rw",
  "303 22 0:4 net:[4026532] /tmp/peerpods-node-x/containerd/state/netns/cni\\040a rw - nsfs nsfs rw",
  "304 22 0:56 / /tmp/peerpods-node-xy rw - tmpfs tmpfs rw",
].join("\n");

const state = (overrides: Partial<HostState> = {}): HostState => ({
  sysctls: { "vm/overcommit_memory": "0", "kernel/panic": "1" },
  mounts: [],
  links: ["docker0"],
  netns: [],
  cgroups: ["memory/user.slice"],
  paths: [],
  ...overrides,
});

describe("host state of a real node", () => {
  it("finds the mounts under a folder, nested ones after their parents, escapes decoded, not a sibling with the same prefix", () => {
    assert.deepEqual(mountsUnder(MOUNTINFO, ["/tmp/peerpods-node-x"]), [
      "/tmp/peerpods-node-x/kubelet",
      "/tmp/peerpods-node-x/kubelet/pods/u/volumes/kube-api-access",
      "/tmp/peerpods-node-x/containerd/state/netns/cni a",
    ]);
  });

  it("reports nothing for an unchanged host", () => {
    assert.deepEqual(hostChanges(state(), state()), []);
  });

  it("reports a changed sysctl with both values, and whatever was added, but not what went away", () => {
    const after = state({
      sysctls: { "vm/overcommit_memory": "1", "kernel/panic": "1" },
      mounts: ["/tmp/n/kubelet"],
      links: ["peerpods-br0", "veth1"],
      cgroups: ["memory/kubepods"],
      paths: ["/var/lib/kubelet"],
    });
    assert.deepEqual(hostChanges(state(), after), [
      "sysctl vm.overcommit_memory is 1, was 0",
      "mount left behind: /tmp/n/kubelet",
      "network interface left behind: peerpods-br0",
      "network interface left behind: veth1",
      "cgroup left behind: memory/kubepods",
      "path left behind: /var/lib/kubelet",
    ]);
  });
});
