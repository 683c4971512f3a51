import assert from "node:assert/strict";
import fc from "fast-check";
import { request as httpsRequest } from "node:https";
import request from "supertest";
import { healthApp } from "../http/apps.js";
import { startServer, type RunningServer } from "../http/server.js";
import { silentLogger } from "../log/logger.js";
import { registry } from "../metrics/registry.js";
import { defaultPolicy } from "../policy/schema.js";
import { PolicyStore } from "../policy/store.js";
import { testCerts } from "../test-support/tls.js";
import { mutateRoute } from "./route.js";

function review(object: unknown, overrides: Record<string, unknown> = {}) {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: { uid: "0f2b5a3c", kind: { group: "", version: "v1", kind: "Pod" }, operation: "CREATE", namespace: "team", object, ...overrides },
  };
}

const peerPod = { metadata: { name: "p" }, spec: { runtimeClassName: "kata-remote", containers: [{ name: "app", resources: { requests: { cpu: "1" } } }] } };

async function counter(result: string): Promise<number> {
  const metric = await registry.getSingleMetric("peerpods_admission_requests_total")!.get();
  return metric.values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe("POST /mutate over HTTPS", () => {
  let server: RunningServer;
  let ca: string;
  let url: string;

  before(async () => {
    const certs = await testCerts();
    ca = certs.ca;
    server = await startServer({
      name: "webhook",
      host: "127.0.0.1",
      port: 0,
      tls: { certFile: certs.certFile, keyFile: certs.keyFile },
      fastRoutes: { "/mutate": mutateRoute({ policy: new PolicyStore(defaultPolicy(), silentLogger), log: silentLogger, maxBodyBytes: 64 * 1024 }) },
      app: healthApp(() => true),
      log: silentLogger,
    });
    url = `https://127.0.0.1:${server.port}`;
  });
  after(() => server.close(0));

  const post = (body: unknown, type = "application/json") => request(url).post("/mutate?timeout=10s").ca(ca).set("content-type", type).send(typeof body === "string" ? body : JSON.stringify(body));

  it("mutates a peer pod and echoes the uid", async () => {
    const before = await counter("mutated");
    const res = await post(review(peerPod)).expect(200);
    assert.equal(res.body.apiVersion, "admission.k8s.io/v1");
    assert.equal(res.body.kind, "AdmissionReview");
    assert.equal(res.body.response.uid, "0f2b5a3c");
    assert.equal(res.body.response.allowed, true);
    assert.equal(res.body.response.patchType, "JSONPatch");
    const patch = JSON.parse(Buffer.from(res.body.response.patch, "base64").toString());
    assert.ok(patch.some((op: { path: string }) => op.path === "/spec/containers/0/resources/requests/kata.peerpods.io~1vm"));
    assert.equal(await counter("mutated"), before + 1);
  });

  it("allows a plain pod without a patch", async () => {
    const res = await post(review({ spec: { containers: [{ name: "a" }] } })).expect(200);
    assert.deepEqual(res.body.response, { uid: "0f2b5a3c", allowed: true });
  });

  it("allows UPDATE without a patch", async () => {
    const res = await post(review(peerPod, { operation: "UPDATE", oldObject: peerPod })).expect(200);
    assert.deepEqual(res.body.response, { uid: "0f2b5a3c", allowed: true });
  });

  it("denies with 403 and an actionable message", async () => {
    const before = await counter("denied");
    const res = await post(review({ ...peerPod, metadata: { annotations: { "io.katacontainers.config.hypervisor.machine_type": "huge" } } })).expect(200);
    assert.equal(res.body.response.allowed, false);
    assert.equal(res.body.response.status.code, 403);
    assert.match(res.body.response.status.message, /instance type "huge" is not allowed in namespace "team"; allowed types: large, medium, small/);
    assert.equal(await counter("denied"), before + 1);
  });

  it("treats a dry run like any other request", async () => {
    const res = await post(review(peerPod, { dryRun: true })).expect(200);
    assert.equal(res.body.response.patchType, "JSONPatch");
  });

  const bad: [string, unknown, number, RegExp][] = [
    ["malformed JSON", "{not json", 400, /not valid JSON/],
    ["an empty body", "", 400, /empty/],
    ["a JSON array", [], 400, /must be a JSON object/],
    ["the wrong apiVersion", { ...review(peerPod), apiVersion: "admission.k8s.io/v1beta1" }, 400, /apiVersion must be admission.k8s.io\/v1/],
    ["the wrong kind", { ...review(peerPod), kind: "Pod" }, 400, /kind must be AdmissionReview/],
    ["no uid", review(peerPod, { uid: "" }), 400, /uid is missing/],
    ["a non-pod object", review(peerPod, { kind: { group: "apps", version: "v1", kind: "Deployment" } }), 400, /Pods only/],
    ["a pod without containers", review({ spec: {} }), 400, /spec.containers/],
    ["a namespace that is not a string", review(peerPod, { namespace: { toString: null } }), 400, /request.namespace must be a string/],
    ["a pod name that is not a string", review({ ...peerPod, metadata: { name: ["web"] } }), 400, /request.object.metadata.name must be a string/],
    ["pod metadata that is not an object", review({ ...peerPod, metadata: "web" }), 400, /request.object.metadata must be an object/],
    ["an oversized body", review({ ...peerPod, metadata: { annotations: { big: "x".repeat(70 * 1024) } } }), 413, /exceeds the limit/],
  ];
  for (const [name, body, status, message] of bad) {
    it(`answers ${status} to ${name} and stays up`, async () => {
      const before = await counter("invalid");
      const res = await post(body).expect(status);
      assert.match(res.body.error, message);
      assert.equal(await counter("invalid"), before + 1);
      await request(url).get("/healthz").ca(ca).expect(200, "ok");
    });
  }

  /** POSTs the body in chunks without a content length (chunked encoding); `abort` drops the connection before the last chunk. */
  const postChunked = (chunks: string[], abort = false) =>
    new Promise<{ status: number; body: string } | "aborted">((resolve, reject) => {
      const req = httpsRequest(`${url}/mutate`, { method: "POST", ca, headers: { "content-type": "application/json" } }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", (error) => (abort ? resolve("aborted") : reject(error)));
      if (abort) req.on("close", () => resolve("aborted"));
      for (const chunk of chunks.slice(0, -1)) req.write(chunk);
      if (abort) setTimeout(() => req.destroy(), 50);
      else req.end(chunks.at(-1));
    });

  it("reads a body sent in chunks", async () => {
    const text = JSON.stringify(review(peerPod));
    const answer = await postChunked([text.slice(0, 10), text.slice(10, 100), text.slice(100)]);
    assert.notEqual(answer, "aborted");
    if (answer === "aborted") return;
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body).response.patchType, "JSONPatch");
  });

  it("answers 413 to a chunked body that outgrows the limit, and stays up", async () => {
    const before = await counter("invalid");
    const answer = await postChunked(["{\"big\": \"", ...Array.from({ length: 80 }, () => "y".repeat(1024)), "\"}"]);
    assert.notEqual(answer, "aborted");
    if (answer === "aborted") return;
    assert.equal(answer.status, 413);
    assert.match(JSON.parse(answer.body).error, /exceeds the limit of 65536 bytes/);
    assert.equal(await counter("invalid"), before + 1);
    await request(url).get("/healthz").ca(ca).expect(200, "ok");
  });

  it("counts a body cut short by the client as invalid, and stays up", async () => {
    const before = await counter("invalid");
    assert.equal(await postChunked(['{"apiVersion": ', "never sent"], true), "aborted");
    for (const deadline = Date.now() + 5000; (await counter("invalid")) === before && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await counter("invalid"), before + 1);
    await request(url).get("/healthz").ca(ca).expect(200, "ok");
  });

  it("answers 415 to a non-JSON content type", async () => {
    await post("x=1", "application/x-www-form-urlencoded").expect(415);
  });

  it("answers random bytes with a 4xx and stays up (300 cases over HTTPS)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
        const res = await request(url).post("/mutate").ca(ca).set("content-type", "application/json").send(Buffer.from(bytes));
        assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
      }),
      { numRuns: 300 },
    );
    await request(url).get("/healthz").ca(ca).expect(200);
  });

  it("answers 404 to unknown routes", async () => {
    await request(url).get("/mutate").ca(ca).expect(404);
  });
});
