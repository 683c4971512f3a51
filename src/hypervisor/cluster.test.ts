import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { silentLogger } from "../log/logger.js";
import { kubeConfigFor } from "../test-support/kubeconfig.js";
import { kubeClusterView, type ClusterView } from "./cluster.js";

/** Stands in for the apiserver: a known pod and PeerPod, a missing pair, a broken and a hanging one. */
function apiserver(): Server {
  return createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? "/", "http://apiserver");
    const podName = url.pathname === "/api/v1/namespaces/shop/pods" ? url.searchParams.get("fieldSelector")?.replace("metadata.name=", "") : undefined;
    switch (podName ?? url.pathname) {
      case "web":
        return send(200, { kind: "PodList", items: [{ metadata: { name: "web", namespace: "shop", uid: "uid-1", resourceVersion: "4711", annotations: { "peerpods.io/instance-type": "medium" } } }] });
      case "gone":
        return send(200, { kind: "PodList", items: [] });
      case "/apis/peerpods.io/v1alpha1/namespaces/shop/peerpods/web":
        return send(200, { spec: { podUID: "uid-1", instanceName: "pp-uid-1", instanceType: "medium" }, status: { instanceID: "i-1" } });
      case "broken":
        return send(500, { kind: "Status", code: 500, message: "etcd unavailable" });
      case "slow":
        return; // never answers
      default:
        return send(404, { kind: "Status", code: 404, reason: "NotFound" });
    }
  });
}

describe("cluster view for CreateVM", () => {
  let server: Server;
  let view: ClusterView;

  before(async () => {
    server = apiserver().listen(0, "127.0.0.1");
    await once(server, "listening");
    view = kubeClusterView(kubeConfigFor(server), silentLogger);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it("reads a pod's UID, resourceVersion and the webhook's instance type, and the worker's record", async () => {
    assert.deepEqual(await view.pod("shop", "web"), { uid: "uid-1", resourceVersion: "4711", instanceType: "medium" });
    assert.deepEqual(await view.record("shop", "web"), { podUID: "uid-1", instanceName: "pp-uid-1", instanceType: "medium", instanceID: "i-1" });
  });

  it("answers undefined for what does not exist and for an apiserver error", async () => {
    assert.equal(await view.pod("shop", "gone"), undefined);
    assert.equal(await view.record("shop", "gone"), undefined);
    assert.equal(await view.pod("shop", "broken"), undefined);
  });

  it("gives up on an apiserver that does not answer, so the shim is not held", async function () {
    this.timeout(10_000);
    assert.equal(await view.pod("shop", "slow"), undefined);
  });
});
