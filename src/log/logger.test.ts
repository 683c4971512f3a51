import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, LOG_FLUSH_MS, redactCredentials } from "./logger.js";

describe("createLogger", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "peerpods-log-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("batches lines into one write and still writes a lone line within the flush interval", async () => {
    const file = join(dir, "log");
    const log = createLogger("info", file);
    log.info({ pod: "shop/a" }, "peer pod mutated");
    log.info({ pod: "shop/b" }, "peer pod mutated");
    assert.equal(await readFile(file, "utf8").catch(() => ""), "", "written before the buffer filled or the interval passed");
    await new Promise((resolve) => setTimeout(resolve, LOG_FLUSH_MS * 3));
    const lines = (await readFile(file, "utf8")).trim().split("\n").map((line) => JSON.parse(line) as { pod: string; msg: string; level: string });
    assert.deepEqual(lines.map((line) => [line.pod, line.level, line.msg]), [["shop/a", "info", "peer pod mutated"], ["shop/b", "info", "peer pod mutated"]]);
    log.flush();
  });

  it("redacts credentials in a line", async () => {
    const file = join(dir, "log");
    const log = createLogger("info", file);
    log.info({ provider: { secretAccessKey: "s3cr3t" } }, "configured");
    log.child({ part: "worker" }).info({ aws: { sessionToken: "t0k3n" } }, "child");
    await new Promise((resolve) => setTimeout(resolve, LOG_FLUSH_MS * 3));
    const text = await readFile(file, "utf8");
    assert.doesNotMatch(text, /s3cr3t|t0k3n/);
    assert.match(text, /"secretAccessKey":"\[redacted\]"/);
    assert.match(text, /"sessionToken":"\[redacted\]"/);
  });
});

describe("redactCredentials", () => {
  it("censors credential keys one level down and leaves the caller's objects alone", () => {
    const provider = { region: "eu-west-1", secretAccessKey: "s3cr3t", accessKeyId: "AKIA", token: "t" };
    const fields = { provider, pod: "shop/a", tls: { key: "pem", certFile: "/c" } };
    assert.deepEqual(redactCredentials(fields), {
      provider: { region: "eu-west-1", secretAccessKey: "[redacted]", accessKeyId: "[redacted]", token: "[redacted]" },
      pod: "shop/a",
      tls: { key: "[redacted]", certFile: "/c" },
    });
    assert.equal(provider.secretAccessKey, "s3cr3t");
  });

  it("returns a line without credentials as it is, without copying", () => {
    const fields = { pod: "shop/a", dryRun: false, instanceType: "small", nested: { name: "x" } };
    assert.equal(redactCredentials(fields), fields);
  });
});
