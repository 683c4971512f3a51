import assert from "node:assert/strict";
import { copyFile } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect, type PeerCertificate } from "node:tls";
import { ensureCerts } from "../certs/generate.js";
import { silentLogger } from "../log/logger.js";
import { testCerts } from "../test-support/tls.js";
import { healthApp } from "./apps.js";
import { startServer, type RunningServer } from "./server.js";

function peerCertificate(port: number, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on("error", reject);
  });
}

describe("TLS server", () => {
  let server: RunningServer;
  let certs: Awaited<ReturnType<typeof testCerts>>;

  before(async () => {
    certs = await testCerts();
    server = await startServer({ name: "t", host: "127.0.0.1", port: 0, tls: { certFile: certs.certFile, keyFile: certs.keyFile }, app: healthApp(() => true), log: silentLogger });
  });
  after(() => server.close(0));

  it("refuses TLS 1.1", async () => {
    await assert.rejects(
      new Promise((resolve, reject) => {
        const socket = connect({ host: "127.0.0.1", port: server.port, ca: certs.ca, maxVersion: "TLSv1.1", minVersion: "TLSv1" }, () => resolve(socket));
        socket.on("error", reject);
      }),
    );
  });

  it("refuses plain HTTP on the TLS port", async () => {
    await assert.rejects(
      new Promise((resolve, reject) => {
        httpGet({ host: "127.0.0.1", port: server.port, path: "/healthz", timeout: 2000 }, resolve).on("error", reject).on("timeout", () => reject(new Error("timeout")));
      }),
    );
  });

  it("serves a rotated certificate without a restart", async () => {
    const before = await peerCertificate(server.port, certs.ca);
    const agentRequest = (): Promise<number> =>
      new Promise((resolve, reject) => {
        httpsRequest({ host: "127.0.0.1", port: server.port, path: "/healthz", ca: certs.ca, servername: "localhost" }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on("error", reject)
          .end();
      });
    assert.equal(await agentRequest(), 200);
    const rotated = await ensureCerts({ outDir: `${certs.dir}/next`, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 2, force: true });
    await copyFile(rotated.files.key, certs.keyFile);
    await copyFile(rotated.files.cert, certs.certFile);
    const newCa = Buffer.from(rotated.caBundle, "base64").toString();
    let after: PeerCertificate | undefined;
    for (let i = 0; i < 50 && !after; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await peerCertificate(server.port, newCa).catch(() => undefined);
    }
    assert.ok(after, "the new certificate was not served within 5 s");
    assert.notEqual(after.fingerprint256, before.fingerprint256);
  });
});
