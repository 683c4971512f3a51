import assert from "node:assert/strict";
import { parse } from "yaml";
import { cniConfList, containerdConfig, kubeletConfig, nodeLayout } from "./config.js";

const layout = nodeLayout("/tmp/peerpods-node-t");

describe("real node configuration", () => {
  it("keeps every folder of the node under its own folder", () => {
    for (const [key, path] of Object.entries(layout)) assert.ok(path.startsWith("/tmp/peerpods-node-t"), `${key}: ${path}`);
  });

  it("containerd: one runc runtime per handler, the first the default, runc state and sandbox image local", () => {
    const toml = containerdConfig({ layout, runcBinary: "/c/runc", cniBinDir: "/c/cni", sandboxImage: "peerpods.local/pause:1", handlers: ["runc", "kata-remote"] });
    assert.match(toml, /^version = 4$/m);
    assert.match(toml, /default_runtime_name = "runc"/);
    for (const handler of ["runc", "kata-remote"]) {
      assert.ok(toml.includes(`[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes."${handler}".options]\n  BinaryName = "/c/runc"\n  Root = "/tmp/peerpods-node-t/runc"`), handler);
    }
    assert.match(toml, /restrict_oom_score_adj = true/);
    assert.match(toml, /sandbox = "peerpods.local\/pause:1"/);
    assert.match(toml, /address = "\/tmp\/peerpods-node-t\/containerd\/containerd.sock"/);
  });

  it("containerd: a handler given a runtime type runs that shim, with no runc options", () => {
    const toml = containerdConfig({ layout, runcBinary: "/c/runc", cniBinDir: "/c/cni", sandboxImage: "p", handlers: ["runc", "peerpods"], runtimeTypes: { peerpods: "io.containerd.peerpods.v2" } });
    assert.ok(toml.includes(`[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes."peerpods"]\n  runtime_type = "io.containerd.peerpods.v2"\n`));
    assert.ok(!toml.includes(`runtimes."peerpods".options]`));
    assert.ok(toml.includes(`runtimes."runc".options]`));
  });

  it("CNI: a gateway bridge without masquerading, addresses kept in the node's folder", () => {
    const list = JSON.parse(cniConfList({ layout, bridge: "br-test", subnet: "10.88.0.0/24" })) as { plugins: Record<string, unknown>[] };
    assert.deepEqual(list.plugins.map((p) => p.type), ["bridge", "portmap"]);
    assert.deepEqual(list.plugins[0], {
      type: "bridge",
      bridge: "br-test",
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: "host-local", ranges: [[{ subnet: "10.88.0.0/24" }]], dataDir: "/tmp/peerpods-node-t/cni/ipam" },
    });
  });

  it("kubelet: cgroup v1 with cgroupfs, loopback only, the node's containerd and log folder", () => {
    const config = parse(kubeletConfig({ layout, address: "127.0.0.1", port: 10250, healthzPort: 10248 })) as Record<string, unknown>;
    assert.equal(config.kind, "KubeletConfiguration");
    assert.equal(config.failCgroupV1, false);
    assert.equal(config.cgroupDriver, "cgroupfs");
    assert.equal(config.address, "127.0.0.1");
    assert.equal(config.healthzBindAddress, "127.0.0.1");
    assert.equal(config.readOnlyPort, 0);
    assert.equal(config.containerRuntimeEndpoint, "unix:///tmp/peerpods-node-t/containerd/containerd.sock");
    assert.equal(config.podLogsDir, "/tmp/peerpods-node-t/pod-logs");
  });
});
