import { join } from "node:path";

export type Accelerator = "kvm" | "tcg";
export type Machine = "microvm" | "q35";

/** Files of one VM inside its state folder. */
export const VM_FILES = {
  record: "instance.json",
  initrd: "initrd.img",
  qmp: "qmp.sock",
  console: "console.log",
  status: "status.log",
  workload: "workload.log",
  qemuLog: "qemu.log",
  stopping: "stopping",
} as const;

/** The VM's NIC: qemu's user-mode network with the agent port forwarded, or a tap on the provider's VPC bridge. */
export type NicSpec =
  | {
      mode: "user";
      /** 127.0.0.1 port forwarded to the agent port in the VM. */
      hostPort: number;
      /** `restrict=on`: the VM reaches nothing outside itself. */
      isolate: boolean;
    }
  | {
      mode: "vpc";
      /** The tap qemu makes (and removes when it exits); the provider puts it on the bridge. */
      tap: string;
      /** The VM's address with the subnet's prefix (`10.224.7.2/24`). */
      address: string;
      /** The NIC's MAC: VMs on one bridge need their own. */
      mac: string;
      mtu: number;
    };

export interface LaunchSpec {
  id: string;
  dir: string;
  kernel: string;
  accelerator: Accelerator;
  machine: Machine;
  vcpus: number;
  memoryMiB: number;
  nic: NicSpec;
  agentPort: number;
  heartbeatSeconds: number;
  /** The host's TSC rate: TCG guests fail to calibrate it under load and stall at boot without it. */
  tscKhz: number;
  /** Adds the `peerpods.workload` port whose output lands in workload.log. */
  workload: boolean;
}

/**
 * Besides the agent's settings: a fixed TSC (no calibration, no watchdog falling back to jiffies,
 * which lose ticks when the host is busy) and no work a one-pod VM does not need. Speculation
 * mitigations are off only under TCG, where guest code never runs speculatively on the host CPU.
 */
export function kernelCommandLine(spec: LaunchSpec): string {
  return [
    "console=ttyS0",
    "quiet",
    "panic=-1",
    `tsc_early_khz=${spec.tscKhz}`,
    "tsc=reliable",
    "no_timer_check",
    "cryptomgr.notests",
    "audit=0",
    "random.trust_cpu=on",
    ...(spec.accelerator === "tcg" ? ["mitigations=off"] : []),
    ...(spec.machine === "microvm" ? ["pci=off"] : []),
    `peerpods.id=${spec.id}`,
    `peerpods.agent_port=${spec.agentPort}`,
    `peerpods.heartbeat=${spec.heartbeatSeconds}`,
    ...(spec.nic.mode === "vpc" ? [`peerpods.ip=${spec.nic.address}`, `peerpods.mtu=${spec.nic.mtu}`] : []),
  ].join(" ");
}

/** The qemu command line for one pod VM. Every file it uses sits in `spec.dir`. */
export function qemuArgs(spec: LaunchSpec): string[] {
  const file = (name: string): string => join(spec.dir, name);
  const device = (kind: "serial" | "net"): string => {
    const bus = spec.machine === "microvm" ? "device" : "pci";
    return kind === "serial" ? `virtio-serial-${bus}` : `virtio-net-${bus}`;
  };
  const port = (id: string, path: string): string[] => ["-chardev", `file,id=${id},path=${path}`, "-device", `virtserialport,chardev=${id},name=peerpods.${id}`];
  return [
    "-name", `peerpods-${spec.id}`,
    "-machine", spec.machine,
    "-accel", spec.accelerator,
    "-cpu", spec.accelerator === "kvm" ? "host" : "max",
    "-smp", String(spec.vcpus),
    "-m", String(spec.memoryMiB),
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-kernel", spec.kernel,
    "-initrd", file(VM_FILES.initrd),
    "-append", kernelCommandLine(spec),
    "-serial", `file:${file(VM_FILES.console)}`,
    "-device", device("serial"),
    ...port("status", file(VM_FILES.status)),
    ...(spec.workload ? port("workload", file(VM_FILES.workload)) : []),
    "-netdev", netdev(spec.nic, spec.agentPort),
    "-device", `${device("net")},netdev=net0${spec.nic.mode === "vpc" ? `,mac=${spec.nic.mac}` : ""}`,
    "-qmp", `unix:${file(VM_FILES.qmp)},server=on,wait=off`,
  ];
}

function netdev(nic: NicSpec, agentPort: number): string {
  if (nic.mode === "vpc") return `tap,id=net0,ifname=${nic.tap},script=no,downscript=no`;
  return `user,id=net0${nic.isolate ? ",restrict=on" : ""},hostfwd=tcp:127.0.0.1:${nic.hostPort}-:${agentPort}`;
}

/** The host TSC rate from /proc/cpuinfo ("cpu MHz : 2199.998"), or `fallback`. */
export function tscKhzFromCpuinfo(cpuinfo: string, fallback = 2_000_000): number {
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1]);
  return Number.isFinite(mhz) && mhz > 0 ? Math.round(mhz * 1000) : fallback;
}
