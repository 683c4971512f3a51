import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VM_FILES } from "./args.js";
import { launchVm, type LaunchHost } from "./launch.js";
import { isVmProcessAlive } from "./process.js";
import { parseQemuSettings } from "./settings.js";

describe("launching a qemu VM", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "qemu-launch-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("kills the VM and removes its folder when cancelled before qemu answers", async () => {
    // a "qemu" that starts and never opens its monitor socket
    const binary = join(dir, "fake-qemu");
    await writeFile(binary, "#!/bin/sh\nsleep 60\n");
    await chmod(binary, 0o755);
    const host: LaunchHost = { settings: parseQemuSettings({ binary }), tscKhz: 1, image: async () => ({ dir, kernel: "/dev/null", initrd: Buffer.alloc(0), inputs: "" }) };
    const vmDir = join(dir, "vm-1");
    const cancel = new AbortController();
    const launching = launchVm(host, {
      dir: vmDir,
      id: "vm-1",
      sizing: { vcpus: 1, memoryMiB: 256 },
      userData: "",
      platform: { accelerator: "tcg", machine: "microvm" },
      identity: { name: "pp-u1", instanceType: "small", tags: {} },
      network: { mode: "user" },
      signal: cancel.signal,
    });
    const pid = await waitForPid(vmDir);
    assert.equal(await isVmProcessAlive(pid, vmDir), true);
    cancel.abort(new Error("peerpods is stopping"));
    await assert.rejects(launching, /peerpods is stopping/);
    // SIGKILL is sent before the call rejects; the process is gone moments later
    assert.equal(await goneWithin(pid, vmDir, 2000), true, "the VM's process group is gone");
    await assert.rejects(stat(vmDir), { code: "ENOENT" });
  });
});

async function waitForPid(vmDir: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const record = await readFile(join(vmDir, VM_FILES.record), "utf8").catch(() => undefined);
    if (record) return (JSON.parse(record) as { pid: number }).pid;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("the VM was not started");
}

async function goneWithin(pid: number, vmDir: string, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    if (!(await isVmProcessAlive(pid, vmDir))) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}
