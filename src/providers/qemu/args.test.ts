import assert from "node:assert/strict";
import { kernelCommandLine, qemuArgs, tscKhzFromCpuinfo, type LaunchSpec } from "./args.js";

const spec: LaunchSpec = {
  id: "vm-0123456789",
  dir: "/state/qemu/vm-0123456789",
  kernel: "/cache/podvm-1/vmlinuz",
  accelerator: "tcg",
  machine: "microvm",
  vcpus: 2,
  memoryMiB: 1024,
  nic: { mode: "user", hostPort: 40123, isolate: true },
  agentPort: 1024,
  heartbeatSeconds: 5,
  tscKhz: 2_200_000,
  workload: false,
};

/** The value after each occurrence of `flag`. */
const values = (args: string[], flag: string): string[] => args.flatMap((arg, i) => (arg === flag ? [args[i + 1]!] : []));

const vpcSpec: LaunchSpec = { ...spec, nic: { mode: "vpc", tap: "ppvm-0123456789", address: "10.224.7.2/24", mac: "02:01:23:45:67:89", mtu: 9000 } };

describe("qemuArgs", () => {
  it("maps the instance type to -smp and -m and the platform to -machine, -accel and -cpu", () => {
    const args = qemuArgs(spec);
    assert.deepEqual(values(args, "-smp"), ["2"]);
    assert.deepEqual(values(args, "-m"), ["1024"]);
    assert.deepEqual(values(args, "-machine"), ["microvm"]);
    assert.deepEqual(values(args, "-accel"), ["tcg"]);
    assert.deepEqual(values(args, "-cpu"), ["max"]);
    assert.deepEqual(values(qemuArgs({ ...spec, accelerator: "kvm" }), "-cpu"), ["host"]);
  });

  it("keeps every file of the VM in its folder", () => {
    const args = qemuArgs(spec);
    assert.deepEqual(values(args, "-initrd"), [`${spec.dir}/initrd.img`]);
    assert.deepEqual(values(args, "-serial"), [`file:${spec.dir}/console.log`]);
    assert.deepEqual(values(args, "-qmp"), [`unix:${spec.dir}/qmp.sock,server=on,wait=off`]);
    assert.deepEqual(values(args, "-chardev"), [`file,id=status,path=${spec.dir}/status.log`]);
  });

  it("forwards a loopback port to the agent, isolated unless told otherwise", () => {
    assert.deepEqual(values(qemuArgs(spec), "-netdev"), ["user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40123-:1024"]);
    assert.deepEqual(values(qemuArgs({ ...spec, nic: { mode: "user", hostPort: 40123, isolate: false } }), "-netdev"), ["user,id=net0,hostfwd=tcp:127.0.0.1:40123-:1024"]);
  });

  it("on the VPC gives the VM a tap of its own that qemu makes and removes, without scripts", () => {
    assert.deepEqual(values(qemuArgs(vpcSpec), "-netdev"), ["tap,id=net0,ifname=ppvm-0123456789,script=no,downscript=no"]);
    assert.ok(values(qemuArgs(vpcSpec), "-device").includes("virtio-net-device,netdev=net0,mac=02:01:23:45:67:89"), "a MAC of its own on the shared bridge");
  });

  it("uses virtio-mmio devices on microvm and virtio-pci on q35", () => {
    assert.deepEqual(values(qemuArgs(spec), "-device").slice(0, 1), ["virtio-serial-device"]);
    assert.ok(values(qemuArgs(spec), "-device").includes("virtio-net-device,netdev=net0"));
    const q35 = values(qemuArgs({ ...spec, machine: "q35" }), "-device");
    assert.ok(q35.includes("virtio-serial-pci") && q35.includes("virtio-net-pci,netdev=net0"));
  });

  it("adds the workload port only when there is a workload", () => {
    assert.equal(values(qemuArgs(spec), "-device").filter((d) => d.includes("peerpods.workload")).length, 0);
    const args = qemuArgs({ ...spec, workload: true });
    assert.ok(values(args, "-chardev").includes(`file,id=workload,path=${spec.dir}/workload.log`));
    assert.ok(values(args, "-device").includes("virtserialport,chardev=workload,name=peerpods.workload"));
  });
});

describe("kernelCommandLine", () => {
  it("carries the TSC rate and the agent settings", () => {
    const words = kernelCommandLine(spec).split(" ");
    for (const word of ["console=ttyS0", "tsc_early_khz=2200000", "tsc=reliable", "peerpods.id=vm-0123456789", "peerpods.agent_port=1024", "peerpods.heartbeat=5"]) assert.ok(words.includes(word), word);
  });

  it("gives a VPC VM its address and MTU, and a user-mode VM neither (the guest takes qemu's default)", () => {
    const words = kernelCommandLine(vpcSpec).split(" ");
    assert.ok(words.includes("peerpods.ip=10.224.7.2/24") && words.includes("peerpods.mtu=9000"), words.join(" "));
    assert.doesNotMatch(kernelCommandLine(spec), /peerpods\.(ip|mtu)=/);
  });

  it("turns PCI off on microvm only and mitigations off under TCG only", () => {
    assert.match(kernelCommandLine(spec), / mitigations=off pci=off /);
    assert.doesNotMatch(kernelCommandLine({ ...spec, machine: "q35" }), /pci=off/);
    assert.doesNotMatch(kernelCommandLine({ ...spec, accelerator: "kvm" }), /mitigations/);
  });
});

describe("tscKhzFromCpuinfo", () => {
  it("reads the first cpu MHz line", () => {
    assert.equal(tscKhzFromCpuinfo("processor\t: 0\ncpu MHz\t\t: 2199.998\ncpu MHz\t\t: 1000\n"), 2_199_998);
    assert.equal(tscKhzFromCpuinfo("no such line", 123), 123);
  });
});
