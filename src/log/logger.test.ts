import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, LOG_FLUSH_MS } from "./logger.js";

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

  it("still redacts credentials", async () => {
    const file = join(dir, "log");
    const log = createLogger("info", file);
    log.info({ provider: { secretAccessKey: "s3cr3t" } }, "configured");
    await new Promise((resolve) => setTimeout(resolve, LOG_FLUSH_MS * 3));
    assert.doesNotMatch(await readFile(file, "utf8"), /s3cr3t/);
  });
});
