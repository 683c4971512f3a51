import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultImageDir, readManifest } from "../src/providers/qemu/image/paths.js";
import { defaultPolicy } from "../src/policy/schema.js";
import { realNodeName } from "./cluster/node/paths.js";
import { atExit, startProcess, type ManagedProcess } from "./cluster/process.js";
import { MILESTONES } from "./dev/timeline.js";
import { trackedTempDir } from "./support/leftovers.js";
import { processesMentioning } from "./support/processes.js";
import { waitFor } from "./support/wait.js";

const REPO = fileURLToPath(new URL("..", import.meta.url));

interface DevRun {
  dev: ManagedProcess;
  output(): string;
  /** Asserts that no process mentions the run's temp folder and that nothing is left in it. */
  assertNothingLeft(): Promise<void>;
}

/**
 * The demo (`command`) with a temp folder of its own: everything the run creates under the temp folder
 * lands there (short, for qemu's socket paths), so "nothing left behind" is checkable.
 */
function runDev(command: string[], cleanups: (() => void)[]): DevRun {
  const runTmp = trackedTempDir("pp-dev-");
  const logDir = mkdtempSync(join(tmpdir(), "pp-dev-log-"));
  const cleanup = (): void => {
    rmSync(runTmp, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
  };
  const forget = atExit(cleanup);
  cleanups.push(() => {
    forget();
    cleanup();
  });
  const logFile = join(logDir, "dev.log");
  const dev = startProcess({ name: "npm run dev", command: command[0]!, args: command.slice(1), logFile, cwd: REPO, env: { TMPDIR: runTmp } });
  return {
    dev,
    output: () => readFileSync(logFile, "utf8"),
    async assertNothingLeft() {
      assert.deepEqual(await processesMentioning(runTmp), [], "processes (control plane, peerpods, qemu) still running");
      // Caches shared by every run of the user, not the demo's to remove: tsx-<uid> is tsx's, and
      // node-compile-cache Node.js's, which npm, tsc and eslint turn on (npm under `npm run` is on the pinned Node.js)
      assert.deepEqual(readdirSync(runTmp).filter((entry) => !/^(tsx-\d+|node-compile-cache)$/.test(entry)), [], "left in the temp folder");
    },
  };
}

function assertRealSequence(output: string): void {
  const at = MILESTONES.map((milestone) => output.search(new RegExp(`^ +\\+ *[\\d.ms]+ +${milestone} `, "m")));
  assert.ok(
    at.every((position, i) => position >= 0 && (i === 0 || position > at[i - 1]!)),
    `milestones ${MILESTONES.join(" → ")} at ${at.join(", ")}:\n${output}`,
  );
}

/** `kubectl logs` shows the pod VM image's kernel (not the host's) and the instance type's vCPUs; `kubectl exec` the VM's memory. */
async function assertFromVm(output: string): Promise<void> {
  const kernel = (await readManifest(defaultImageDir()))!.kernelRelease;
  assert.notEqual(kernel, release(), "the image's kernel is not the host's (else the check means nothing)");
  const small = defaultPolicy().instanceTypes.find((type) => type.name === "small")!;
  assert.notEqual(small.vcpus, cpus().length, "the VM's vCPUs differ from the host's cores (else the check means nothing)");
  const logs = /kubectl logs demo\/hello \(pod created → logs visible [\d.]+s\):\n {2}(\S+) .*\n {2}(\S+) /.exec(output);
  assert.ok(logs, `no kubectl logs lines in:\n${output.slice(-4000)}`);
  assert.deepEqual([logs[1], logs[2]], [kernel, String(small.vcpus)]);
  const exec = /kubectl exec demo\/hello -- head -1 \/proc\/meminfo \(round trip [\d.]+s\):\n {2}MemTotal: +(\d+) kB\n/.exec(output);
  assert.ok(exec, `no kubectl exec answer in:\n${output.slice(-4000)}`);
  assert.ok(Number(exec[1]) <= small.memoryMiB * 1024, `MemTotal ${exec[1]} kB is the VM's (${small.memoryMiB} MiB), not the host's`);
}

describe("npm run dev (the local all-in-one demo)", function () {
  this.timeout(15 * 60_000);
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  it("--once runs the sample peer pod to Ready on a real VM in the real order, exits 0, and leaves no process, VM or temp folder", async () => {
    const run = runDev(["npm", "run", "--silent", "dev", "--", "--once"], cleanups);
    const status = await run.dev.exited;
    const output = run.output();
    assert.equal(status, "0", output.slice(-4000));
    assertRealSequence(output);
    assert.match(output, /the webhook chose instance type small \(1 vCPU, 512 MiB\) for cpu 750m, memory 384Mi/);
    // the real node gets its slots from the kubelet's device manager, fed by peerpods' device plugin
    assert.match(output, new RegExp(`VM slots: dev-node-1 none, dev-node-2 none, ${realNodeName()} 2\n`));
    assert.match(output, /dev-node-1: node does not match the peer-pod node selector/);
    assert.match(output, new RegExp(`bound to node ${realNodeName()}\n`));
    assert.match(output, new RegExp(`its container runs in that VM: ${realNodeName()}'s containerd runs handler peerpods with containerd-shim-peerpods-v2`));
    await assertFromVm(output);
    assert.match(output, /nothing left on the host/);
    assert.match(output, /export KUBECONFIG=\S+\/kubeconfig/);
    assert.match(output, /metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
    assert.match(output, /VM deleted by the worker/);
    await run.assertNothingLeft();
  });

  it("without --once keeps running until Ctrl-C, then tears everything down in order and exits 0", async () => {
    // the script itself, not through npm: npm re-raises a SIGINT its child got, whatever the child's exit code
    const run = runDev([process.execPath, "--import", "tsx", "e2e/dev/main.ts"], cleanups);
    await Promise.race([
      waitFor(() => / pod Ready /.test(run.output()), { timeoutMs: 10 * 60_000, intervalMs: 500, message: "the sample pod to be Ready" }),
      run.dev.exited.then((status) => assert.fail(`npm run dev exited (${status}) before Ctrl-C:\n${run.output().slice(-4000)}`)),
    ]);
    // what a terminal's Ctrl-C does: SIGINT to the whole foreground process group
    await run.dev.stop(120_000, "SIGINT");
    const output = run.output();
    assert.equal(await run.dev.exited, "0", output.slice(-4000));
    assertRealSequence(output);
    assert.match(output, /SIGINT: tearing down/);
    assert.match(output, /VM deleted by the worker/);
    assert.match(output, /all stopped and removed/);
    await run.assertNothingLeft();
  });
});
