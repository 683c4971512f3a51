import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Server } from "node:net";
import { agentSession, podDataCommands } from "./agent.js";

/** A stand-in for the guest's line protocol: answers `ok` to user-data, an error to anything else, closes on quit. */
function fakeAgent(received: string[]): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    let buffered = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        received.push(line);
        if (line === "quit") socket.end();
        else socket.write(line.startsWith("user-data ") ? "ok\n" : "error: unknown command\n");
      }
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port })));
}

describe("qemu guest agent session", () => {
  it("sends the pod's data base64-encoded, one command a line, with the workload only when there is one", () => {
    assert.deepEqual(podDataCommands('{"a":1}', undefined), [`user-data ${Buffer.from('{"a":1}').toString("base64")}`]);
    const [, workload] = podDataCommands("{}", "echo hi\n");
    assert.equal(workload, `workload ${Buffer.from("echo hi\n").toString("base64")}`);
  });

  it("returns one answer per command and ends the session with quit", async () => {
    const received: string[] = [];
    const { server, port } = await fakeAgent(received);
    try {
      assert.deepEqual(await agentSession(port, ["user-data e30=", "bogus"]), ["ok", "error: unknown command"]);
      assert.deepEqual(received, ["user-data e30=", "bogus", "quit"]);
    } finally {
      server.close();
    }
  });

  it("fails when nothing listens", async () => {
    const { server, port } = await fakeAgent([]);
    await new Promise((resolve) => server.close(resolve));
    await assert.rejects(agentSession(port, ["ping"]));
  });
});

describe("agentSession over a flaky guest network", () => {
  it("tries again when the connection is reset before the agent answered", async () => {
    let connections = 0;
    const server = createServer((socket) => {
      connections += 1;
      if (connections === 1) {
        socket.resetAndDestroy();
        return;
      }
      socket.on("data", () => socket.end("pong\n"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      assert.deepEqual(await agentSession(port, ["ping"]), ["pong"]);
      assert.equal(connections, 2);
    } finally {
      server.close();
    }
  });
});
