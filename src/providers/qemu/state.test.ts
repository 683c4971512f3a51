import assert from "node:assert/strict";
import { parseAgentStatus, parseVmRecord, toInstance, type Observation, type VmRecord } from "./state.js";

const common = {
  id: "vm-0123456789",
  name: "pp-u1",
  instanceType: "small",
  vcpus: 1,
  memoryMiB: 512,
  tags: { "peerpods.io/pod-uid": "u1" },
  createdAt: "2026-01-01T00:00:00.000Z",
  pid: 4242,
  accelerator: "tcg",
  machine: "microvm",
} as const;
const record: VmRecord = { ...common, network: "user", hostPort: 40123 };
const vpcRecord: VmRecord = { ...common, network: "vpc", privateIp: "10.224.7.2", agentPort: 1024 };

const now = Date.parse("2026-01-01T00:10:00.000Z");
const seen = (overrides: Partial<Observation>): Observation => ({ alive: true, stopping: false, status: {}, nowMs: now, heartbeatSeconds: 5, ...overrides });

describe("parseVmRecord", () => {
  it("reads a record it wrote and rejects anything else", () => {
    assert.deepEqual(parseVmRecord(JSON.stringify(record)), record);
    assert.equal(parseVmRecord("{not json"), undefined);
    assert.equal(parseVmRecord(JSON.stringify({ ...record, pid: "4242" })), undefined);
    assert.equal(parseVmRecord(JSON.stringify({ ...record, accelerator: "hvf" })), undefined);
  });

  it("reads a VPC record with its private IP, and a record of an earlier version (no network) as user mode", () => {
    assert.deepEqual(parseVmRecord(JSON.stringify(vpcRecord)), vpcRecord);
    const earlier = { ...common, hostPort: 40123 };
    assert.deepEqual(parseVmRecord(JSON.stringify(earlier)), record);
    assert.equal(parseVmRecord(JSON.stringify({ ...vpcRecord, privateIp: undefined })), undefined, "a VPC record names its address");
    assert.equal(parseVmRecord(JSON.stringify({ ...earlier, hostPort: undefined })), undefined, "a user-mode record names its port");
  });
});

describe("parseAgentStatus", () => {
  it("finds the boot time and the workload's exit code", () => {
    assert.deepEqual(parseAgentStatus(""), {});
    assert.deepEqual(parseAgentStatus("ready boot_ms=1940 kernel=6.12\nheartbeat uptime_ms=7000 workload=running\n"), { bootMs: 1940 });
    assert.deepEqual(parseAgentStatus("ready boot_ms=0500 kernel=x\nworkload exited code=3\n"), { bootMs: 500, workloadExitCode: 3 });
  });

  it("takes the exit code from a heartbeat when only the log's tail is read", () => {
    assert.deepEqual(parseAgentStatus("ready boot_ms=2000 kernel=x\n\nat_ms=9 workload=exited:0\nheartbeat uptime_ms=99000 workload=exited:0\n"), { bootMs: 2000, workloadExitCode: 0 });
  });
});

describe("toInstance", () => {
  it("is pending until the agent reports ready", () => {
    const instance = toInstance(record, seen({}));
    assert.equal(instance.state, "pending");
    assert.equal(instance.ready, false);
    assert.equal(instance.agentEndpoint, "tcp:127.0.0.1:40123");
    assert.equal(instance.privateIp, undefined, "user mode gives the VM no address the node reaches");
    assert.equal(instance.name, "pp-u1");
    assert.deepEqual(instance.createdAt, new Date(record.createdAt));
    assert.equal(instance.image, undefined, "a record of an earlier version names no image");
    assert.equal(toInstance({ ...record, image: "/var/cache/podvm-1" }, seen({})).image, "/var/cache/podvm-1");
  });

  it("reaches a VPC VM's agent at its private IP", () => {
    const instance = toInstance(vpcRecord, seen({}));
    assert.equal(instance.privateIp, "10.224.7.2");
    assert.equal(instance.agentEndpoint, "tcp:10.224.7.2:1024");
  });

  it("is running and ready while heartbeats arrive", () => {
    const instance = toInstance(record, seen({ status: { bootMs: 1900 }, lastStatusAtMs: now - 4000 }));
    assert.equal(instance.state, "running");
    assert.equal(instance.ready, true);
    assert.match(instance.message!, /1900 ms/);
  });

  it("is not ready once heartbeats stop", () => {
    const instance = toInstance(record, seen({ status: { bootMs: 1900 }, lastStatusAtMs: now - 31_000 }));
    assert.equal(instance.state, "running");
    assert.equal(instance.ready, false);
    assert.match(instance.message!, /heartbeat lost 31 s ago/);
    assert.equal(toInstance(record, seen({ status: { bootMs: 1900 }, lastStatusAtMs: now - 31_000, heartbeatSeconds: 60 })).ready, true);
  });

  it("shows a dead process as terminated with qemu's last words", () => {
    const instance = toInstance(record, seen({ alive: false, status: { bootMs: 1900 }, exitReason: "qemu-system-x86_64: failed to set MSR 0x10a" }));
    assert.equal(instance.state, "terminated");
    assert.equal(instance.ready, false);
    assert.equal(instance.message, "qemu exited: qemu-system-x86_64: failed to set MSR 0x10a");
  });

  it("shows a VM being deleted as stopping", () => {
    assert.equal(toInstance(record, seen({ stopping: true, status: { bootMs: 1 } })).state, "stopping");
    assert.equal(toInstance(record, seen({ stopping: true, alive: false })).message, "deleted");
  });
});
