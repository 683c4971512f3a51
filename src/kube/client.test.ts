import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { ensureCerts } from "../certs/generate.js";
import { loadKubeConfig } from "./client.js";

describe("loadKubeConfig", function () {
  this.timeout(20_000);
  let dir: string;
  let server: Server;
  let handshakes = 0;
  let kubeconfig: string;
  let ca: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "peerpods-kubeconfig-"));
    const certs = await ensureCerts({ outDir: dir, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 1, force: true });
    server = createServer({ cert: await readFile(certs.files.cert), key: await readFile(certs.files.key) }, (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ apiVersion: "v1", kind: "NodeList", metadata: {}, items: [] }));
    });
    server.on("secureConnection", () => (handshakes += 1));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    ca = certs.files.ca;
    kubeconfig = join(dir, "kubeconfig");
    await writeFile(
      kubeconfig,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: `https://127.0.0.1:${port}`, "certificate-authority": ca } }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  // undici may open a second connection when a call starts before the previous response has handed
  // its connection back to the pool; without the shared dispatcher every call is a new handshake.
  it("sends successive API calls over kept-alive TLS connections", async () => {
    const core = loadKubeConfig(kubeconfig).makeApiClient(CoreV1Api);
    handshakes = 0;
    for (let i = 0; i < 10; i++) assert.deepEqual((await core.listNode()).items, []);
    assert.ok(handshakes <= 2, `${handshakes} TLS handshakes for 10 calls`);
  });

  it("opens new connections once the TLS options change (a rotated CA file)", async () => {
    const core = loadKubeConfig(kubeconfig).makeApiClient(CoreV1Api);
    await core.listNode();
    handshakes = 0;
    await appendFile(ca, "\n");
    await core.listNode();
    assert.equal(handshakes, 1);
  });
});
