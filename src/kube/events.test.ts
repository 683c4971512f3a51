import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { silentLogger } from "../log/logger.js";
import { kubeConfigFor } from "../test-support/kubeconfig.js";
import { eventRecorder, eventTarget, POD } from "./events.js";

describe("Events", () => {
  it("name the object with what kubectl describe selects on (kind, name, namespace, uid) and its resourceVersion, leaving out what is unknown", () => {
    assert.deepEqual(eventTarget(POD, { namespace: "shop", name: "web", uid: "u-1", resourceVersion: "42" }), {
      apiVersion: "v1",
      kind: "Pod",
      namespace: "shop",
      name: "web",
      uid: "u-1",
      resourceVersion: "42",
    });
    assert.deepEqual(eventTarget(POD, { namespace: "shop", name: "web", uid: undefined }), { apiVersion: "v1", kind: "Pod", namespace: "shop", name: "web" });
    const policy = { apiVersion: "peerpods.io/v1alpha1", kind: "PeerPodPolicy" };
    assert.deepEqual(eventTarget(policy, { name: "default", uid: "p-1" }), { ...policy, name: "default", uid: "p-1" });
  });

  describe("recorder", () => {
    let server: Server;
    const posted: { url: string; body: Record<string, unknown> }[] = [];

    before(async () => {
      server = createServer((req, res) => {
        let text = "";
        req.on("data", (chunk: Buffer) => (text += chunk.toString()));
        req.on("end", () => {
          posted.push({ url: req.url ?? "", body: JSON.parse(text) as Record<string, unknown> });
          res.writeHead(201, { "content-type": "application/json" });
          res.end(text);
        });
      });
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
    });
    after(() => {
      server.closeAllConnections();
      server.close();
    });

    it("writes the target as the Event's involvedObject, in the object's namespace", async () => {
      eventRecorder(kubeConfigFor(server), silentLogger).record(eventTarget(POD, { namespace: "shop", name: "web", uid: "u-1", resourceVersion: "42" }), "Normal", "SandboxVM", "runs in VM vm-1");
      for (let i = 0; i < 200 && posted.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(posted[0]?.url, "/api/v1/namespaces/shop/events");
      assert.deepEqual(posted[0]?.body.involvedObject, { apiVersion: "v1", kind: "Pod", namespace: "shop", name: "web", uid: "u-1", resourceVersion: "42" });
      assert.deepEqual([posted[0]?.body.reason, posted[0]?.body.type], ["SandboxVM", "Normal"]);
    });
  });
});
