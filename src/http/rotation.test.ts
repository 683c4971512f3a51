import assert from "node:assert/strict";
import { copyFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import type { TLSSocket } from "node:tls";
import { ensureCerts } from "../certs/generate.js";
import { silentLogger } from "../log/logger.js";
import { testCerts } from "../test-support/tls.js";
import { healthApp } from "./apps.js";
import { startServer } from "./server.js";

const ROTATIONS = 3;
const CLIENTS = 8;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(condition: () => boolean, timeoutMs = 6_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !condition() && Date.now() < end; ) await sleep(5);
}

describe("certificate rotation under load", function () {
  this.timeout(60_000);

  it(`rotates the serving pair ${ROTATIONS} times while ${CLIENTS} clients handshake without pause, and no request fails`, async () => {
    const certs = await testCerts();
    const server = await startServer({ name: "t", host: "127.0.0.1", port: 0, tls: { certFile: certs.certFile, keyFile: certs.keyFile }, app: healthApp(() => true), log: silentLogger });
    // clients trust every CA of the run, as a caBundle does across a rotation
    const trusted = [certs.ca];
    const seen = new Set<string>();
    const outcome = { ok: 0, failed: [] as string[] };
    // how many requests are in flight per length of the trust list they were sent with
    const inFlight = new Map<number, number>();
    let loading = true;

    const once = (): Promise<void> =>
      new Promise((resolve) => {
        const generation = trusted.length;
        inFlight.set(generation, (inFlight.get(generation) ?? 0) + 1);
        const done = (): void => {
          inFlight.set(generation, (inFlight.get(generation) ?? 1) - 1);
          resolve();
        };
        // a new connection each time: every request makes a fresh TLS handshake
        const req = httpsRequest({ host: "127.0.0.1", port: server.port, path: "/healthz", ca: [...trusted], servername: "localhost", agent: false }, (res) => {
          seen.add((res.socket as TLSSocket).getPeerCertificate().fingerprint256);
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) outcome.ok += 1;
            else outcome.failed.push(`status ${res.statusCode}`);
            done();
          });
        });
        req.on("error", (error) => {
          outcome.failed.push(error.message);
          done();
        });
        req.end();
      });
    const load = Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (loading) await once();
      }),
    );

    try {
      for (let rotation = 1; rotation <= ROTATIONS; rotation += 1) {
        await sleep(300);
        const next = await ensureCerts({ outDir: `${certs.dir}/r${rotation}`, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 2, force: true });
        trusted.push(Buffer.from(next.caBundle, "base64").toString());
        // a request sent before the new CA was trusted would rightly refuse the new certificate
        await waitUntil(() => [...inFlight].every(([generation, count]) => generation === trusted.length || count === 0));
        // two separate writes, as a careless operator would: a mismatched pair must be ignored meanwhile
        await copyFile(next.files.key, certs.keyFile);
        await copyFile(next.files.cert, certs.certFile);
        const servedBefore = seen.size;
        await waitUntil(() => seen.size > servedBefore);
      }
    } finally {
      loading = false;
      await load;
      await server.close(0);
    }
    assert.deepEqual(outcome.failed, [], `${outcome.failed.length} of ${outcome.ok + outcome.failed.length} requests failed`);
    assert.equal(seen.size, ROTATIONS + 1, "every rotated certificate was served");
    assert.ok(outcome.ok > 100, `only ${outcome.ok} requests made`);
  });
});
