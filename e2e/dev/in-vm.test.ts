import assert from "node:assert/strict";
import { inVmLines } from "./in-vm.js";

describe("npm run dev: what the sample pod's VM shows", () => {
  it("puts the container's log lines beside the host's kernel and cores, then the exec answer, with the times", () => {
    const lines = inVmLines(
      { logLines: ["6.12.118+deb12-cloud-amd64", "1"], logsMs: 9400, execOutput: "MemTotal:         475012 kB", execMs: 520 },
      "demo/hello",
      { kernelRelease: "6.8.0-host", cpus: 2 },
      { name: "small", vcpus: 1 },
    );
    assert.deepEqual(lines, [
      "kubectl logs demo/hello (pod created → logs visible 9.4s):",
      "  6.12.118+deb12-cloud-amd64 uname -r: the pod VM image's kernel (the host runs 6.8.0-host)",
      "  1                        nproc: the vCPUs of instance type small (1; the host has 2)",
      "kubectl exec demo/hello -- head -1 /proc/meminfo (round trip 0.5s):",
      "  MemTotal:         475012 kB",
    ]);
  });
});
