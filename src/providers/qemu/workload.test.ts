import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { shellQuote, workloadScript } from "./workload.js";

describe("workloadScript", () => {
  it("runs the script of `sh -c` with its positional arguments", () => {
    assert.equal(workloadScript(JSON.stringify({ command: ["/bin/sh", "-c", "echo $1-$2", "name", "a b", "c'd"] })), "set -- 'a b' 'c'\\''d'\necho $1-$2\n");
    assert.equal(workloadScript(JSON.stringify({ command: ["bash", "-c", "sleep 1"] })), "sleep 1\n");
  });

  it("executes any other command by its base name, quoted", () => {
    assert.equal(workloadScript(JSON.stringify({ command: ["/usr/bin/sleep", "3600"] })), "exec 'sleep' '3600'\n");
    assert.equal(workloadScript(JSON.stringify({ command: ["echo", "$(reboot)"] })), "exec 'echo' '$(reboot)'\n");
  });

  it("quotes so that sh reads each word back unchanged", () => {
    for (const word of ["plain", "a b", "it's", "$(x) `y` \\z", "", "'"]) {
      assert.equal(execFileSync("sh", ["-c", `printf %s ${shellQuote(word)}`], { encoding: "utf8" }), word);
    }
  });

  it("means no workload for user-data without a command", () => {
    for (const userData of ["", "not json", "null", "{}", JSON.stringify({ pod: "p", command: [] }), JSON.stringify({ command: "echo hi" }), JSON.stringify({ command: ["echo", 1] })]) {
      assert.equal(workloadScript(userData), undefined, userData);
    }
  });
});
