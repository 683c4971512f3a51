import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { atExit, startProcess } from "./cluster/process.js";
import { MILESTONES } from "./dev/timeline.js";
import { processesMentioning } from "./support/processes.js";

const REPO = fileURLToPath(new URL("..", import.meta.url));

describe("npm run dev -- --once (the local all-in-one demo)", function () {
  this.timeout(15 * 60_000);

  it("runs the sample peer pod to Ready on a real VM in the real order, exits 0, and leaves no process, VM or temp folder", async () => {
    // Everything the run creates in the temp folder lands in this one (short: qemu's socket paths), so "nothing left" is checkable.
    const runTmp = mkdtempSync(join(tmpdir(), "pp-dev-"));
    const logDir = mkdtempSync(join(tmpdir(), "pp-dev-log-"));
    const cleanup = (): void => {
      rmSync(runTmp, { recursive: true, force: true });
      rmSync(logDir, { recursive: true, force: true });
    };
    const forget = atExit(cleanup);
    try {
      const logFile = join(logDir, "dev.log");
      const dev = startProcess({ name: "npm run dev", command: "npm", args: ["run", "--silent", "dev", "--", "--once"], logFile, cwd: REPO, env: { TMPDIR: runTmp } });
      const status = await dev.exited;
      const output = readFileSync(logFile, "utf8");
      assert.equal(status, "0", output.slice(-4000));

      const at = MILESTONES.map((milestone) => output.search(new RegExp(`^ +\\+ *[\\d.ms]+ +${milestone} `, "m")));
      assert.ok(
        at.every((position, i) => position >= 0 && (i === 0 || position > at[i - 1]!)),
        `milestones ${MILESTONES.join(" → ")} at ${at.join(", ")}:\n${output}`,
      );
      assert.match(output, /the webhook chose instance type small \(1 vCPU, 512 MiB\) for cpu 750m, memory 384Mi/);
      assert.match(output, /VM slots: dev-node-1 2, dev-node-2 2, dev-node-3 none/);
      assert.match(output, /dev-node-3: node does not match the peer-pod node selector/);
      assert.match(output, /bound to node dev-node-[12]\n/);
      assert.match(output, /export KUBECONFIG=\S+\/kubeconfig/);
      assert.match(output, /metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
      assert.match(output, /VM deleted by the worker/);

      assert.deepEqual(await processesMentioning(runTmp), [], "processes (control plane, peerpods, qemu) still running");
      // tsx-<uid> is tsx's compile cache, shared by every tsx run of the user: not the demo's to remove
      assert.deepEqual(readdirSync(runTmp).filter((entry) => !/^tsx-\d+$/.test(entry)), [], "left in the temp folder");
    } finally {
      forget();
      cleanup();
    }
  });
});
