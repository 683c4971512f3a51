import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fakeAgents } from "../test-support/fake-agent.js";
import { AGENT_PROTOCOL_METADATA_KEY, AGENT_PROTOCOL_VERSION, AGENT_SERVICE, agentMessages, withAgent } from "./agent-client.js";
import { TtrpcStatusError } from "./ttrpc-client.js";

describe("agent client (agent.proto from the node's TypeScript side)", () => {
  const { start, closeAll } = fakeAgents();
  afterEach(closeAll);

  it("speaks the protocol version, key and service the Go agent defines", async () => {
    const protocolGo = await readFile(new URL("./pkg/agentapi/protocol.go", import.meta.url), "utf8");
    assert.match(protocolGo, new RegExp(`const ProtocolVersion uint32 = ${AGENT_PROTOCOL_VERSION}\\n`));
    assert.match(protocolGo, new RegExp(`const ProtocolMetadataKey = "${AGENT_PROTOCOL_METADATA_KEY}"`));
    assert.match(protocolGo, new RegExp(`const ServiceName = "${AGENT_SERVICE}"`));
  });

  it("sends the protocol version with every call and decodes the answers", async () => {
    const health = { ready: true, uptime_ms: 1234, instance_id: "vm-1", workload: "running", containers: 2, failed_calls: { Health: 1 } };
    const agent = await start((call) => ({ payload: call.method === "Health" ? agentMessages.healthResponse.encode(health) : new Uint8Array() }));
    const answer = await withAgent(agent.endpoint, async (client) => {
      await client.setUserData('{"pod":"a"}');
      return client.health();
    });
    assert.equal(answer.instance_id, "vm-1");
    assert.equal(answer.workload, "running");
    assert.deepEqual(answer.failed_calls, { Health: 1 });
    assert.deepEqual(
      agent.calls.map((c) => [c.service, c.method, c.metadata[AGENT_PROTOCOL_METADATA_KEY]]),
      [
        [AGENT_SERVICE, "SetUserData", "1"],
        [AGENT_SERVICE, "Health", "1"],
      ],
    );
    assert.equal(agentMessages.setUserDataRequest.decode(agent.calls[0]!.payload).data.toString(), '{"pod":"a"}');
  });

  it("sends the pod's network as SetupNetwork with the field names agent.proto gives them", async () => {
    const agent = await start(() => ({ payload: new Uint8Array() }));
    const network = {
      interface: "eth0",
      mac: "ee:eb:7f:09:03:1e",
      mtu: 1500,
      addresses: ["10.88.0.5/24"],
      routes: [{ destination: "0.0.0.0/0", gateway: "10.88.0.1" }, { destination: "10.96.0.0/12" }],
      vni: 4242,
      port: 4789,
      nodeIp: "10.224.3.1",
      vmIp: "10.224.3.2",
    };
    await withAgent(agent.endpoint, (client) => client.setupNetwork(network));
    assert.equal(agent.calls[0]!.method, "SetupNetwork");
    const sent = agentMessages.setupNetworkRequest.decode(agent.calls[0]!.payload);
    assert.deepEqual({ ...sent }, {
      interface: "eth0",
      mac: "ee:eb:7f:09:03:1e",
      mtu: 1500,
      addresses: ["10.88.0.5/24"],
      routes: [{ destination: "0.0.0.0/0", gateway: "10.88.0.1" }, { destination: "10.96.0.0/12", gateway: "" }],
      vni: 4242,
      port: 4789,
      node_ip: "10.224.3.1",
    });
  });

  it("says that an agent without SetupNetwork runs an image older than the pod network, or another agent", async () => {
    const agent = await start(() => ({ code: 12, message: "method SetupNetwork" }));
    const network = { interface: "eth0", mac: "ee:eb:7f:09:03:1e", mtu: 1500, addresses: ["10.88.0.5/24"], routes: [], vni: 1, port: 4789, nodeIp: "10.224.3.1", vmIp: "10.224.3.2" };
    await assert.rejects(withAgent(agent.endpoint, (client) => client.setupNetwork(network)), /the VM's agent has no SetupNetwork: the pod VM image predates the pod network .* or runs another agent/);
  });

  it("turns a refusal into an error with its code and message", async () => {
    const agent = await start(() => ({ code: 9, message: "the client speaks agent protocol version 2" }));
    const error = await withAgent(agent.endpoint, (client) => client.health()).catch((e: unknown) => e);
    assert.ok(error instanceof TtrpcStatusError);
    assert.equal(error.code, 9);
    assert.match(error.message, /^Health: the client speaks agent protocol version 2$/);
  });

  it("tries again when the connection is reset before the agent answered, and not after", async () => {
    const agent = await start(() => (agent.connections === 1 ? "reset" : { payload: agentMessages.healthResponse.encode({ ready: true }) }));
    assert.equal((await withAgent(agent.endpoint, (client) => client.health())).ready, true);
    assert.equal(agent.connections, 2);
    const answeredThenReset = await start((call) => (call.method === "Health" ? "reset" : {}));
    await assert.rejects(withAgent(answeredThenReset.endpoint, async (client) => (await client.setUserData("x"), client.health())));
    assert.equal(answeredThenReset.connections, 1);
  });

  it("gives up on a call that gets no answer within its timeout", async () => {
    const agent = await start(() => "silence");
    await assert.rejects(
      withAgent(agent.endpoint, (client) => client.health(), 200),
      /Health: no answer within 200 ms/,
    );
  });
});
