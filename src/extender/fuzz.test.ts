import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import fc from "fast-check";
import { healthApp } from "../http/apps.js";
import { HttpError } from "../http/errors.js";
import { startServer, type FastRoute, type RunningServer } from "../http/server.js";
import { silentLogger } from "../log/logger.js";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema } from "../policy/schema.js";
import { testCerts } from "../test-support/tls.js";
import { extenderRoutes } from "./route.js";
import { SchedulingState } from "./state.js";

const policy = compilePolicy(policySpecSchema.parse({ nodes: { vmsPerNode: 2 }, limits: { maxVMs: 50, maxVCPUs: 100 } }), 1);

function freshState(): SchedulingState {
  const state = new SchedulingState(policy);
  for (const name of ["n1", "n2", "n3"]) state.upsertNode({ metadata: { name, labels: {} } });
  return state;
}

/** A request as the fast route reads it: headers and a body stream. */
const fakeRequest = (body: Buffer | string, contentType = "application/json"): IncomingMessage =>
  Object.assign(Readable.from([Buffer.from(body)]), { headers: { "content-type": contentType } }) as unknown as IncomingMessage;

/** Either a JSON answer or an HttpError 4xx whose body carries `Error`; anything else (a 500, a throw of another kind) is a bug. */
async function answersCleanly(route: FastRoute, body: Buffer | string): Promise<"ok" | "refused"> {
  try {
    JSON.parse(await route(fakeRequest(body)));
    return "ok";
  } catch (error) {
    assert.ok(error instanceof HttpError, `not an HttpError: ${(error as Error).stack}`);
    assert.ok(error.status >= 400 && error.status < 500, `status ${error.status}: ${error.message}`);
    assert.equal(typeof (JSON.parse(error.body!) as { Error: unknown }).Error, "string");
    return "refused";
  }
}

const pick = <T>(...values: T[]) => fc.constantFrom(...values);
/** `plausible` four times in five, any JSON value otherwise: hostile, yet often enough past the checks. */
const mostly = <T>(plausible: fc.Arbitrary<T>) => fc.oneof({ arbitrary: plausible, weight: 4 }, { arbitrary: fc.jsonValue(), weight: 1 });
/** Pods that look almost right: the fields the extender reads hold random JSON or plausible values. */
const hostilePod = fc.record(
  {
    metadata: fc.record(
      {
        name: mostly(fc.string()),
        namespace: mostly(fc.string()),
        uid: mostly(fc.uuid()),
        annotations: mostly(fc.dictionary(fc.oneof(pick("peerpods.io/instance-type", "peerpods.io/vcpus"), fc.string()), mostly(pick("small", "t3.medium", "")))),
      },
      { requiredKeys: [] },
    ),
    spec: fc.record(
      {
        runtimeClassName: mostly(pick("kata-remote", "runc")),
        nodeName: fc.oneof(pick("n1", "n2"), fc.jsonValue()),
        containers: fc.oneof(fc.array(fc.record({ name: fc.string(), resources: fc.jsonValue() })), fc.jsonValue()),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);
const hostileArgs = fc.record(
  {
    Pod: fc.oneof(hostilePod, fc.jsonValue()),
    NodeNames: fc.oneof(fc.array(fc.oneof(pick("n1", "n2", "n3", "missing"), fc.string())), fc.jsonValue()),
    Nodes: fc.oneof(fc.record({ items: fc.array(fc.record({ metadata: fc.record({ name: fc.oneof(pick("n1", "n2"), fc.jsonValue()) }) })) }), fc.jsonValue()),
  },
  { requiredKeys: [] },
);

describe("scheduler extender under hostile input", function () {
  this.timeout(120_000);
  for (const verb of ["/filter", "/prioritize"] as const) {
    it(`${verb}: 10,000 random JSON documents and near-valid ExtenderArgs get a JSON answer or a 4xx with Error, never a 500`, async () => {
      const route = extenderRoutes({ state: freshState(), log: silentLogger, maxBodyBytes: 1024 * 1024 })[verb]!;
      const outcomes = { ok: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.jsonValue(), hostileArgs), async (value) => {
          outcomes[await answersCleanly(route, JSON.stringify(value))] += 1;
        }),
        { numRuns: 10_000 },
      );
      // both branches must have been exercised, or the generators are not hostile/valid enough
      assert.ok(outcomes.ok > 100 && outcomes.refused > 100, JSON.stringify(outcomes));
    });
  }

  it("refuses a pod whose names are objects (a JSON object with toString: 0 cannot become a string)", async () => {
    const route = extenderRoutes({ state: freshState(), log: silentLogger, maxBodyBytes: 1 << 20 })["/filter"]!;
    for (const pod of [
      { metadata: { namespace: { toString: 0 } }, spec: { runtimeClassName: "kata-remote" } },
      { metadata: { uid: "u1", annotations: { "peerpods.io/instance-type": { toString: 0 } } }, spec: { runtimeClassName: "kata-remote" } },
      { metadata: { name: ["web"] }, spec: { runtimeClassName: { toString: 0 } } },
    ]) {
      assert.equal(await answersCleanly(route, JSON.stringify({ Pod: pod, NodeNames: ["n1"] })), "refused", JSON.stringify(pod));
    }
  });

  it("answers 2,000 random byte strings with a 4xx in-process", async () => {
    const route = extenderRoutes({ state: freshState(), log: silentLogger, maxBodyBytes: 1024 })["/filter"]!;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 2048 }), async (bytes) => {
        const buffer = Buffer.from(bytes);
        let parsed: unknown;
        try {
          parsed = JSON.parse(buffer.toString("utf8"));
        } catch {
          parsed = undefined;
        }
        const outcome = await answersCleanly(route, buffer);
        if (parsed === undefined || typeof parsed !== "object") assert.equal(outcome, "refused");
      }),
      { numRuns: 2_000 },
    );
  });

  describe("over HTTPS", () => {
    let server: RunningServer;
    let ca: string;
    before(async () => {
      const certs = await testCerts();
      ca = certs.ca;
      server = await startServer({
        name: "extender",
        host: "127.0.0.1",
        port: 0,
        tls: { certFile: certs.certFile, keyFile: certs.keyFile },
        fastRoutes: extenderRoutes({ state: freshState(), log: silentLogger, maxBodyBytes: 4096 }),
        app: healthApp(() => true),
        log: silentLogger,
      });
    });
    after(() => server.close(0));

    const post = (path: string, body: Buffer, contentType: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest({ host: "127.0.0.1", port: server.port, path, method: "POST", ca, headers: { "content-type": contentType } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end(body);
      });

    it("answers 300 random bodies (bytes, any content type, any path) with a 4xx and keeps serving", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 8192 }),
          pick("application/json", "text/plain", "application/json; charset=utf-16", ""),
          pick("/filter", "/prioritize", "/filter/../filter", "/"),
          async (bytes, contentType, path) => {
            const status = await post(path, Buffer.from(bytes), contentType);
            assert.ok(status >= 400 && status < 500, `status ${status}`);
          },
        ),
        { numRuns: 300 },
      );
      const valid = Buffer.from(JSON.stringify({ Pod: { metadata: { name: "web" }, spec: { containers: [] } }, NodeNames: ["n1"] }));
      assert.equal(await post("/filter", valid, "application/json"), 200);
    });
  });
});
