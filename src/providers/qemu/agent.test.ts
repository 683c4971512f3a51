import assert from "node:assert/strict";
import { agentMessages } from "../../runtime/agent-client.js";
import { fakeAgents } from "../../test-support/fake-agent.js";
import type { ProviderError } from "../types.js";
import { handOverPodData } from "./agent.js";

describe("handing a pod's data to a booted qemu VM", () => {
  const { start, closeAll } = fakeAgents();
  afterEach(closeAll);

  it("sends the user data, then the workload it implies", async () => {
    const agent = await start(() => ({}));
    const userData = JSON.stringify({ pod: "a", command: ["sh", "-c", "echo hi"] });
    await handOverPodData({ id: "vm-1", endpoint: agent.endpoint, tags: {} }, userData, undefined);
    assert.deepEqual(agent.calls.map((c) => c.method), ["SetUserData", "StartWorkload"]);
    assert.equal(agentMessages.setUserDataRequest.decode(agent.calls[0]!.payload).data.toString(), userData);
    assert.equal(agentMessages.startWorkloadRequest.decode(agent.calls[1]!.payload).script, "echo hi\n");
  });

  it("sends no workload when the user data implies none", async () => {
    const agent = await start(() => ({}));
    await handOverPodData({ id: "vm-1", endpoint: agent.endpoint, tags: {} }, "{}", undefined);
    assert.deepEqual(agent.calls.map((c) => c.method), ["SetUserData"]);
  });

  it("takes a workload already started as its own (a retried claim), and any other refusal as retryable", async () => {
    const started = await start((call) => (call.method === "StartWorkload" ? { code: 6, message: "a workload was already started" } : {}));
    await handOverPodData({ id: "vm-1", endpoint: started.endpoint, tags: {} }, JSON.stringify({ command: ["sleep", "1"] }), undefined);
    const refusing = await start(() => ({ code: 9, message: "the client speaks agent protocol version 2" }));
    await assert.rejects(handOverPodData({ id: "vm-2", endpoint: refusing.endpoint, tags: {} }, "{}", undefined), (error: ProviderError) => {
      assert.equal(error.kind, "retryable");
      assert.match(error.message, /could not hand the pod's data to qemu VM vm-2: SetUserData: the client speaks agent protocol version 2/);
      return true;
    });
  });
});
