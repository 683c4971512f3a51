import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { openSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { registry } from "../metrics/registry.js";
import { createLogger, logDestination, redactCredentials } from "./logger.js";

/** The file's lines once it has `count` of them; the flush interval passes meanwhile. */
async function linesOnceWritten(file: string, count: number): Promise<Record<string, unknown>[]> {
  for (const deadline = Date.now() + 10_000; ; ) {
    const lines = (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean);
    if (lines.length >= count) return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    if (Date.now() > deadline) throw new Error(`${file} has ${lines.length} of ${count} lines`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("createLogger", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "peerpods-log-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("batches lines into one write and still writes a lone line within the flush interval", async () => {
    const file = join(dir, "log");
    const log = createLogger("info", openSync(file, "w"));
    log.info({ pod: "shop/a" }, "peer pod mutated");
    log.info({ pod: "shop/b" }, "peer pod mutated");
    assert.equal(await readFile(file, "utf8").catch(() => ""), "", "written before the buffer filled or the interval passed");
    const lines = await linesOnceWritten(file, 2);
    assert.deepEqual(lines.map((line) => [line.pod, line.level, line.msg]), [["shop/a", "info", "peer pod mutated"], ["shop/b", "info", "peer pod mutated"]]);
    log.flush();
  });

  it("redacts credentials in a line and in a child logger's bindings", async () => {
    const file = join(dir, "log");
    const log = createLogger("info", openSync(file, "w"));
    log.info({ provider: { secretAccessKey: "s3cr3t" } }, "configured");
    log.child({ part: "worker" }).info({ aws: { sessionToken: "t0k3n" } }, "child");
    log.child({ provider: { region: "eu-west-1", accessKeyId: "AKIA-bound" } }).info("bound");
    const lines = await linesOnceWritten(file, 3);
    const text = JSON.stringify(lines);
    assert.doesNotMatch(text, /s3cr3t|t0k3n|AKIA-bound/);
    assert.deepEqual(lines.map((line) => line.msg), ["configured", "child", "bound"]);
    assert.deepEqual(lines[2]!.provider, { region: "eu-west-1", accessKeyId: "[redacted]" });
    assert.equal(lines[1]!.part, "worker");
  });

  it("writes what is buffered when the process exits", async function () {
    this.timeout(30_000);
    const file = join(dir, "log");
    const script = `import { openSync } from "node:fs"; import { createLogger } from ${JSON.stringify(join(import.meta.dirname, "logger.ts"))};
      createLogger("info", openSync(${JSON.stringify(file)}, "w")).info({ pod: "shop/a" }, "last words"); process.exit(3);`;
    const exited = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script]).then(
      () => 0,
      (error: { code: number }) => error.code,
    );
    assert.equal(exited, 3);
    assert.deepEqual((await linesOnceWritten(file, 1)).map((line) => line.msg), ["last words"]);
  });
});

describe("logDestination", () => {
  const dropped = async (): Promise<number> => (await registry.getSingleMetric("peerpods_log_lines_dropped_total")!.get()).values[0]?.value ?? 0;

  it("drops and counts lines past its limit instead of holding them, and keeps the ones it took", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peerpods-log-"));
    try {
      const file = join(dir, "log");
      const destination = logDestination(openSync(file, "w"), 2048);
      const before = await dropped();
      const line = (n: number): string => `${JSON.stringify({ n, pad: "x".repeat(900) })}\n`;
      for (let n = 0; n < 4; n++) destination.write(line(n));
      assert.equal(await dropped(), before + 2);
      destination.flushSync();
      assert.deepEqual((await linesOnceWritten(file, 2)).map((entry) => entry.n), [0, 1]);
      destination.end();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
