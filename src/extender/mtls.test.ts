import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { healthApp } from "../http/apps.js";
import { startServer, type RunningServer } from "../http/server.js";
import { silentLogger } from "../log/logger.js";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy } from "../policy/schema.js";
import { testCerts } from "../test-support/tls.js";
import { extenderRoutes } from "./route.js";
import { SchedulingState } from "./state.js";

interface ClientIdentity {
  cert: Buffer;
  key: Buffer;
}

describe("extender client authentication (--extender-client-ca)", () => {
  let server: RunningServer;
  let serverCa: string;
  let scheduler: ClientIdentity;
  let stranger: ClientIdentity;

  before(async () => {
    const serving = await testCerts();
    const schedulerCerts = await testCerts();
    const strangerCerts = await testCerts();
    serverCa = serving.ca;
    const identity = async (certs: typeof schedulerCerts): Promise<ClientIdentity> => ({ cert: await readFile(certs.certFile), key: await readFile(certs.keyFile) });
    scheduler = await identity(schedulerCerts);
    stranger = await identity(strangerCerts);
    server = await startServer({
      name: "extender",
      host: "127.0.0.1",
      port: 0,
      tls: { certFile: serving.certFile, keyFile: serving.keyFile, clientCaFile: schedulerCerts.caFile },
      fastRoutes: extenderRoutes({ state: new SchedulingState(compilePolicy(defaultPolicy(), 1)), log: silentLogger, maxBodyBytes: 4096 }),
      app: healthApp(() => true),
      log: silentLogger,
    });
  });
  after(() => server.close(0));

  const filter = (client?: ClientIdentity): Promise<number> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ Pod: { metadata: { name: "web" }, spec: { containers: [] } }, NodeNames: ["n1"] });
      const req = httpsRequest(
        { host: "127.0.0.1", port: server.port, path: "/filter", method: "POST", ca: serverCa, headers: { "content-type": "application/json" }, ...client },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end(body);
    });

  it("serves a client whose certificate the configured CA signed", async () => {
    assert.equal(await filter(scheduler), 200);
  });

  it("refuses the handshake of a client without a certificate", async () => {
    await assert.rejects(filter(), /certificate required|ECONNRESET|socket hang up|alert/i);
  });

  it("refuses a client certificate signed by another CA", async () => {
    await assert.rejects(filter(stranger), /unknown ca|ECONNRESET|socket hang up|alert/i);
  });
});
