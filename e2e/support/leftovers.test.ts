import assert from "node:assert/strict";
import { qemuArgs, type LaunchSpec } from "../../src/providers/qemu/args.js";
import { leftoverBridges, leftoverVms, processGroupOf, vmDirOf, type ProcessInfo } from "./leftovers.js";

const launch = (dir: string): string[] =>
  qemuArgs({
    id: "vm-0123456789",
    dir,
    kernel: "/cache/podvm-1/vmlinuz",
    accelerator: "tcg",
    machine: "microvm",
    vcpus: 1,
    memoryMiB: 256,
    nic: { mode: "user", hostPort: 40123, isolate: true },
    agentPort: 1024,
    heartbeatSeconds: 5,
    tscKhz: 2_200_000,
    workload: true,
  } satisfies LaunchSpec);

const qemu = (pid: number, dir: string, pgid = pid): ProcessInfo => ({ pid, pgid, argv: ["qemu-system-x86_64", ...launch(dir)] });

describe("leftover qemu VMs of an e2e run", () => {
  it("finds a VM's folder from the command line the qemu provider starts it with", () => {
    assert.equal(vmDirOf(["qemu-system-x86_64", ...launch("/tmp/pp-qemu-AbC123/qemu/vm-0123456789")]), "/tmp/pp-qemu-AbC123/qemu/vm-0123456789");
    assert.equal(vmDirOf(["timeout", "-k", "5", "95s", "qemu-system-x86_64", ...launch("/tmp/s/qemu-probe/probe-tcg-microvm")]), "/tmp/s/qemu-probe/probe-tcg-microvm");
  });

  it("sees no VM in other command lines", () => {
    assert.equal(vmDirOf(["node", "--import", "tsx", "src/main.ts", "serve", "--state-dir=/tmp/pp-qemu-AbC123"]), undefined);
    assert.equal(vmDirOf(["qemu-system-x86_64", "-qmp"]), undefined);
    assert.equal(vmDirOf(["qemu-system-x86_64", "-qmp", "tcp:127.0.0.1:4444,server=on"]), undefined);
    assert.equal(vmDirOf(["qemu-system-x86_64", "-qmp", "unix:/run/other.sock,server=on"]), undefined);
  });

  it("keeps only the VMs under the run's folders, at any depth, and not those of a folder that merely shares the prefix", () => {
    const processes = [
      qemu(100, "/tmp/pp-qemu-AbC123/qemu/vm-0000000001"),
      qemu(200, "/tmp/wp-e2e-XyZ789/state/qemu/vm-0000000002"),
      qemu(300, "/tmp/pp-qemu-AbC1234/qemu/vm-0000000003"),
      qemu(400, "/tmp/another-run/qemu/vm-0000000004"),
      { pid: 500, pgid: 500, argv: ["node", "src/main.ts", "serve", "--state-dir=/tmp/pp-qemu-AbC123"] },
    ];
    assert.deepEqual(leftoverVms(processes, ["/tmp/pp-qemu-AbC123", "/tmp/wp-e2e-XyZ789/"]), [
      { pid: 100, group: true, dir: "/tmp/pp-qemu-AbC123/qemu/vm-0000000001" },
      { pid: 200, group: true, dir: "/tmp/wp-e2e-XyZ789/state/qemu/vm-0000000002" },
    ]);
    assert.deepEqual(leftoverVms(processes, []), []);
  });

  it("signals a probe VM's group once (timeout and its qemu), and a VM outside its own group alone", () => {
    const probeDir = "/tmp/run/qemu-probe/probe-tcg-microvm";
    const processes = [
      { pid: 600, pgid: 600, argv: ["timeout", "-k", "5", "95s", "qemu-system-x86_64", ...launch(probeDir)] },
      qemu(601, probeDir, 600),
      qemu(700, "/tmp/run/qemu/vm-0000000007", 42),
    ];
    assert.deepEqual(leftoverVms(processes, ["/tmp/run"]), [
      { pid: 600, group: true, dir: probeDir },
      { pid: 700, group: false, dir: "/tmp/run/qemu/vm-0000000007" },
    ]);
  });

  it("reads the process group from /proc/<pid>/stat, whatever the command name holds", () => {
    assert.equal(processGroupOf("4242 (qemu-system-x86) S 1 4242 4242 0 -1 4194560 0 0"), 4242);
    assert.equal(processGroupOf("77 (a (b) c) R 12 70 70 0"), 70);
    assert.equal(processGroupOf("garbage"), undefined);
  });
});

describe("leftover qemu VPC bridges of an e2e run", () => {
  it("finds the bridges whose label names a state folder under a tracked folder, and only those", () => {
    const bridges = [
      { name: "ppvpc-aaaaaa", label: "peerpods qemu VPC of /tmp/pp-qemu-AbC123" },
      { name: "ppvpc-bbbbbb", label: "peerpods qemu VPC of /tmp/qemu-e2e-x/state" },
      { name: "ppvpc-cccccc", label: "peerpods qemu VPC of /tmp/pp-qemu-AbC1234" },
      { name: "ppvpc-dddddd", label: "peerpods qemu VPC of /var/lib/peerpods" },
      { name: "docker0" },
    ];
    assert.deepEqual(leftoverBridges(bridges, ["/tmp/pp-qemu-AbC123", "/tmp/qemu-e2e-x/"]), ["ppvpc-aaaaaa", "ppvpc-bbbbbb"]);
    assert.deepEqual(leftoverBridges(bridges, []), []);
  });
});
