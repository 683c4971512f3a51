import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promtoolBinary } from "./support/promtool.js";

const MONITORING = fileURLToPath(new URL("../manifests/monitoring/", import.meta.url));

function promtool(binary: string, ...args: string[]): string {
  const result = spawnSync(binary, args, { cwd: MONITORING, encoding: "utf8" });
  const output = `${result.stdout}${result.stderr}`;
  assert.equal(result.status, 0, result.error?.message ?? output);
  return output;
}

describe("alert rules with Prometheus' own promtool", function () {
  this.timeout(120_000);
  let binary: string;
  before(async () => {
    binary = await promtoolBinary();
  });

  it("prometheus-rules.yaml passes `promtool check rules`", () => {
    assert.match(promtool(binary, "check", "rules", "prometheus-rules.yaml"), /SUCCESS: 8 rules found/);
  });

  it("each alert fires on the series that should trip it, with its labels and annotations, and not before (`promtool test rules`)", () => {
    assert.match(promtool(binary, "test", "rules", "prometheus-rules.test.yaml"), /SUCCESS/);
  });
});
