import assert from "node:assert/strict";
import { silentLogger } from "../log/logger.js";
import type { Instance } from "../providers/types.js";
import { parsePodNetwork, type PodNetwork, type PodNetworker } from "./pod-network.js";
import { connectPodNetwork, PodNetworkError, type SandboxNetworkOptions } from "./sandbox-network.js";
import { Code } from "./ttrpc.js";

const NETWORK: PodNetwork = {
  interface: "eth0",
  mac: "ee:eb:7f:09:03:1e",
  mtu: 1500,
  addresses: ["10.88.0.5/24"],
  routes: [{ destination: "0.0.0.0/0", gateway: "10.88.0.1" }],
  vni: 4242,
  port: 4789,
  nodeIp: "10.224.3.1",
  vmIp: "10.224.3.2",
};

const instance = (privateIp?: string): Instance => ({
  id: "vm-1",
  name: "pod-vm",
  instanceType: "small",
  tags: {},
  state: "running",
  ready: true,
  createdAt: new Date(0),
  agentEndpoint: "tcp:10.224.3.2:1024",
  ...(privateIp ? { privateIp } : {}),
});

function harness(networker: Partial<PodNetworker> = {}, configureVm: SandboxNetworkOptions["configureVm"] = async () => undefined) {
  const told: string[] = [];
  const outcomes: string[] = [];
  const calls: string[] = [];
  const options: SandboxNetworkOptions = {
    networker: {
      attach: async (netns, sandboxId, vmIp) => {
        calls.push(`attach ${netns} ${sandboxId} ${vmIp}`);
        return NETWORK;
      },
      detach: async () => undefined,
      ...networker,
    },
    configureVm: async (target, network) => {
      calls.push(`configure ${target.endpoint} vni ${network.vni}`);
      await configureVm(target, network);
    },
    tell: (who, type, reason, message) => told.push(`${who.pod} ${type} ${reason}: ${message}`),
    log: silentLogger,
    observe: (outcome) => outcomes.push(outcome),
  };
  const sandbox = (vm: Instance) => ({ id: "sbx1", who: { pod: "shop/web" }, netnsPath: "/run/netns/cni-1", instance: vm, target: { endpoint: vm.agentEndpoint! } });
  return { options, sandbox, told, outcomes, calls };
}

describe("pod network of a sandbox", () => {
  it("tunnels the pod's namespace to the VM's private address, then configures the VM, and says so on the pod", async () => {
    const { options, sandbox, told, outcomes, calls } = harness();
    const state = await connectPodNetwork(options, sandbox(instance("10.224.3.2")));
    assert.deepEqual(state, { state: "connected", podIp: "10.88.0.5", vmIp: "10.224.3.2", vni: 4242 });
    assert.deepEqual(calls, ["attach /run/netns/cni-1 sbx1 10.224.3.2", "configure tcp:10.224.3.2:1024 vni 4242"]);
    assert.deepEqual(told, ["shop/web Normal PodNetwork: pod IP 10.88.0.5 is served by VM vm-1 at 10.224.3.2 over VXLAN (VNI 4242, MTU 1500)"]);
    assert.deepEqual(outcomes, ["connected"]);
  });

  it("a VM without a private address runs the pod without a cluster network, with a Warning on the pod", async () => {
    const { options, sandbox, told, outcomes, calls } = harness();
    const state = await connectPodNetwork(options, sandbox(instance()));
    assert.equal(state.state, "unavailable");
    assert.deepEqual(calls, [], "no tunnel to nowhere");
    assert.equal(told.length, 1);
    assert.match(told[0]!, /^shop\/web Warning PodNetworkUnavailable: VM vm-1 has no private address/);
    assert.deepEqual(outcomes, ["unavailable"]);
  });

  it("a failure on the node or in the VM fails the sandbox's start with the reason, counted", async () => {
    const onNode = harness({ attach: async () => Promise.reject(new Error("peerpods-podnet attach: the pod's namespace has 2 interfaces besides lo")) });
    const error = await connectPodNetwork(onNode.options, onNode.sandbox(instance("10.224.3.2"))).catch((e: unknown) => e);
    assert.ok(error instanceof PodNetworkError);
    assert.equal(error.code, Code.INTERNAL);
    assert.equal(error.reason, "PodNetworkFailed");
    assert.match(error.message, /pod network for VM vm-1: .*2 interfaces besides lo/);
    assert.deepEqual(onNode.outcomes, ["failed"]);

    const inVm = harness({}, async () => Promise.reject(new Error("unknown method SetupNetwork")));
    await assert.rejects(connectPodNetwork(inVm.options, inVm.sandbox(instance("10.224.3.2"))), /pod network for VM vm-1: unknown method SetupNetwork/);
  });
});

describe("peerpods-podnet's answer", () => {
  it("parses the network it prints", () => {
    assert.deepEqual(parsePodNetwork(`${JSON.stringify(NETWORK)}\n`), NETWORK);
  });

  it("refuses output that is not the network, saying what is wrong", () => {
    assert.throws(() => parsePodNetwork("attach: done"), /printed no JSON: "attach: done"/);
    assert.throws(() => parsePodNetwork(JSON.stringify({ ...NETWORK, addresses: [], vni: "x" })), /addresses: .*; vni: /);
  });
});
