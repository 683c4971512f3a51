import assert from "node:assert/strict";
import type { Instance as Ec2Instance } from "@aws-sdk/client-ec2";
import { isLive, mapState, toInstance } from "./instances.js";

const base: Ec2Instance = {
  InstanceId: "i-1",
  InstanceType: "m5.large",
  ImageId: "ami-0123456789abcdef0",
  LaunchTime: new Date("2026-02-03T04:05:06Z"),
  Placement: { AvailabilityZone: "eu-west-1b" },
  Tags: [
    { Key: "Name", Value: "vm-a" },
    { Key: "peerpods.io/pod-uid", Value: "uid-a" },
  ],
};
const withState = (name: string, extra: Partial<Ec2Instance> = {}): Ec2Instance => ({ ...base, State: { Name: name as "pending" }, ...extra });

describe("aws instance mapping", () => {
  it("maps every EC2 state", () => {
    const states = ["pending", "running", "stopping", "stopped", "shutting-down", "terminated"].map(mapState);
    assert.deepEqual(states, ["pending", "running", "stopping", "stopping", "terminated", "terminated"]);
    assert.deepEqual(["pending", "running", "stopped", "shutting-down"].map((state) => isLive(withState(state))), [true, true, false, false]);
  });

  it("maps a running instance with its private IP, agent endpoint, zone and tags", () => {
    assert.deepEqual(toInstance(withState("running", { PrivateIpAddress: "10.1.2.3" }), { agentPort: 15150 }), {
      id: "i-1",
      name: "vm-a",
      state: "running",
      ready: true,
      instanceType: "m5.large",
      tags: { Name: "vm-a", "peerpods.io/pod-uid": "uid-a" },
      createdAt: new Date("2026-02-03T04:05:06Z"),
      privateIp: "10.1.2.3",
      agentEndpoint: "tcp:10.1.2.3:15150",
      zone: "eu-west-1b",
      image: "ami-0123456789abcdef0",
    });
  });

  it("is not ready while status checks fail or initialize, and ready when EC2 reports none", () => {
    const running = withState("running");
    const status = (instance: string, system: string) => ({ InstanceStatus: { Status: instance as "ok" }, SystemStatus: { Status: system as "ok" } });
    assert.equal(toInstance(running, { agentPort: 1, status: status("initializing", "ok") }).ready, false);
    assert.equal(toInstance(running, { agentPort: 1, status: status("ok", "impaired") }).ready, false);
    assert.equal(toInstance(running, { agentPort: 1, status: status("ok", "ok") }).ready, true);
    assert.equal(toInstance(running, { agentPort: 1 }).ready, true);
    assert.equal(toInstance(withState("pending"), { agentPort: 1, status: status("ok", "ok") }).ready, false);
  });

  it("says why a VM is not running, in EC2's own words", () => {
    const stopped = toInstance(withState("stopped", { StateReason: { Message: "Client.UserInitiatedShutdown" } }), { agentPort: 1 });
    assert.equal(stopped.state, "stopping");
    assert.equal(stopped.message, "EC2 state stopped: Client.UserInitiatedShutdown");
    assert.equal(toInstance(withState("shutting-down"), { agentPort: 1 }).message, "EC2 state shutting-down");
    assert.equal(toInstance(withState("pending"), { agentPort: 1 }).message, undefined);
    assert.equal(toInstance(withState("running", { StateTransitionReason: "" }), { agentPort: 1 }).message, undefined);
  });

  it("falls back to the instance id for a VM without a Name tag", () => {
    assert.equal(toInstance({ ...withState("running"), Tags: [] }, { agentPort: 1 }).name, "i-1");
  });
});
