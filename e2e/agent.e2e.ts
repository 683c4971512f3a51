/**
 * peerpods-agent in a real pod VM (qemu, the pod VM image): containers from a busybox rootfs
 * shipped from the node, run with runc inside the VM, driven by peerpods-agentctl (the Go client
 * the containerd shim will use) over the VM's forwarded agent port.
 */
import assert from "node:assert/strict";
import { availableParallelism, release } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { readFile } from "node:fs/promises";
import { AgentTlsStore } from "../src/agent-tls/store.js";
import { bundleCertificates } from "../src/agent-tls/files.js";
import { ensureAgentCa, rotateAgentCa } from "../src/certs/agent.js";
import { VM_FILES } from "../src/providers/qemu/args.js";
import { agentTarget } from "../src/agent-tls/target.js";
import { withAgentCertificates } from "../src/providers/agent-certificates.js";
import { createProvider } from "../src/providers/factory.js";
import { defaultImageDir, readManifest } from "../src/providers/qemu/image/paths.js";
import type { QemuProvider } from "../src/providers/qemu/provider.js";
import { TAG, type Instance } from "../src/providers/types.js";
import { withAgent, type AgentHealth } from "../src/runtime/agent-client.js";
import { buildRuntime } from "../src/runtime/build.js";
import { TtrpcStatusError } from "../src/runtime/ttrpc-client.js";
import { agentctl, type AgentctlResult } from "./support/agentctl.js";
import { waitFor } from "./support/wait.js";
import { busyboxRootfs } from "./support/busybox.js";
import { trackedTempDir } from "./support/leftovers.js";
import { processesMentioning } from "./support/processes.js";

const BOOT_TIMEOUT_MS = 180_000;
const VM_NAME = "agent-e2e";
/** Not the host's count, so that a container reporting the host's is caught. */
const VM_VCPUS = availableParallelism() === 1 ? 2 : 1;

interface Ran extends AgentctlResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  timings: Record<string, number>;
}

describe("peerpods-agent: containers with runc inside a real pod VM", function () {
  this.timeout(BOOT_TIMEOUT_MS);
  let dir: string;
  let provider: QemuProvider;
  let vm: Instance;
  let ctlBinary: string;
  let rootfs: string;
  let bootLeftovers: AgentHealth["leftovers"];
  const measured: string[] = [];

  let agentTls: AgentTlsStore;
  let agentCaDir: string;
  const ctl = (args: string[], input?: string): Promise<AgentctlResult> => agentctl(ctlBinary, vm.agentEndpoint!, args, input, { dir: agentCaDir, instance: VM_NAME });
  const ran = async (args: string[], input?: string): Promise<Ran> => {
    const result = await ctl(args, input);
    assert.equal(result.code, undefined, `${args.join(" ")}: ${result.code} ${result.message}`);
    return result as Ran;
  };
  const health = async (): Promise<AgentHealth> => withAgent(await agentTarget(vm.agentEndpoint!, vm.tags, agentTls), (agent) => agent.health());

  before(async function () {
    this.timeout(BOOT_TIMEOUT_MS * 2);
    dir = trackedTempDir("pp-agent-");
    ctlBinary = (await buildRuntime()).agentctl;
    rootfs = await busyboxRootfs(defaultImageDir(), join(dir, "busybox"));
    // A CA of its own: the suite rolls it under the running VM.
    agentCaDir = join(dir, "agent-ca");
    await ensureAgentCa({ outDir: agentCaDir, validDays: 2, force: true });
    agentTls = new AgentTlsStore(agentCaDir, pino({ level: "silent" }));
    provider = (await createProvider({ name: "qemu", qemu: {} }, { clusterId: "agent-e2e", stateDir: join(dir, "state"), log: pino({ level: "silent" }), agentTls })) as QemuProvider;
    const started = Date.now();
    const created = await withAgentCertificates(provider, agentTls).create({
      name: VM_NAME,
      instanceType: { name: "e2e", vcpus: VM_VCPUS, memoryMiB: 256, gpus: 0 },
      userData: "{}",
      tags: { [TAG.cluster]: "agent-e2e", [TAG.podUid]: "agent-e2e" },
    });
    vm = await provider.waitUntilReady(created.id, BOOT_TIMEOUT_MS);
    measured.push(`VM ready in ${Date.now() - started} ms (${vm.message})`);
    bootLeftovers = (await health()).leftovers;
  });

  after(async function () {
    this.timeout(60_000);
    if (vm) await provider.delete(vm.id);
    // With no VM left, closing removes the provider's VPC bridge.
    await provider?.close();
    assert.deepEqual(await processesMentioning(`${dir}/`), [], "no qemu process left");
    if (measured.length > 0) console.log(`      ${measured.join("; ")}`);
  });

  it("a container prints the pod VM's kernel release and vCPU count, never the host's", async () => {
    const kernel = (await readManifest(defaultImageDir()))!.kernelRelease;
    const result = await ran(["run", "-id", "facts", "-rootfs", rootfs, "--", "sh", "-c", "uname -r; nproc"]);
    assert.deepEqual(result.stdout.split("\n"), [kernel, String(VM_VCPUS), ""]);
    assert.notEqual(kernel, release(), "the image's kernel is not the host's (else the check means nothing)");
    assert.equal(result.exitCode, 0);
    const modules = (await readManifest(defaultImageDir()))!.modules;
    assert.ok(modules.includes("vxlan"), `the image carries vxlan for the pod network's tunnels: ${modules.join(", ")}`);
    assert.doesNotMatch(await readFile(join(dir, "state", "qemu", vm.id, VM_FILES.console), "utf8"), /cannot load/, "every module of the image loaded");
    measured.push(`create → first output ${result.timings.firstOutputMs} ms (rootfs upload ${result.timings.uploadMs} ms)`);
  });

  it("a container that exits 3 reports 3, with its stderr apart from its stdout", async () => {
    const result = await ran(["run", "-id", "exit3", "-rootfs", rootfs, "-env", "WHO=peerpods", "-cwd", "/bin", "--", "sh", "-c", 'echo "$WHO in $PWD"; echo oops >&2; exit 3']);
    assert.deepEqual([result.stdout, result.stderr, result.exitCode], ["peerpods in /bin\n", "oops\n", 3]);
  });

  it("exec: stdin echoes through cat; a terminal gets its size and input; the exec's exit code comes back", async () => {
    await ran(["run", "-id", "app", "-detach", "-rootfs", rootfs, "--", "sleep", "3600"]);
    const cat = await ran(["exec", "-id", "app", "-exec", "cat", "-stdin", "--", "cat"], "through cat\nand back\n");
    assert.deepEqual([cat.stdout, cat.exitCode], ["through cat\nand back\n", 0]);
    const tty = await ran(["exec", "-id", "app", "-exec", "tty", "-tty", "-stdin", "-rows", "40", "-cols", "100", "--", "sh", "-c", 'read line; stty size; tty; echo "got $line"; exit 4'], "hello\n");
    assert.match(tty.stdout, /^hello\r\n40 100\r\n\/dev\/pts\/\d+\r\ngot hello\r\n$/);
    assert.equal(tty.exitCode, 4);
    const echo = await ran(["exec", "-id", "app", "-exec", "echo", "--", "echo", "hi"]);
    assert.equal(echo.stdout, "hi\n");
    measured.push(`exec round trip ${echo.timings.exitMs} ms (ExecProcess of echo until its exit)`);
  });

  it("two containers share the VM (its network): one serves on a port, the other reads it", async () => {
    await ran(["run", "-id", "server", "-detach", "-rootfs", rootfs, "--", "sh", "-c", "echo from the server container | nc -l -p 8080"]);
    const client = await ran(["run", "-id", "client", "-rootfs", rootfs, "--", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do nc 127.0.0.1 8080 && exit 0; sleep 0.5; done; exit 1"]);
    assert.deepEqual([client.stdout, client.exitCode], ["from the server container\n", 0]);
    assert.equal((await health()).containers, 5, "facts, exit3, app, server, client and nothing else");
  });

  it("the VM's NIC: on the VPC its private IP, MTU 9000 and no default route; in user mode qemu's address and gateway", async () => {
    const result = await ran(["run", "-id", "net", "-rootfs", rootfs, "--", "sh", "-c", "ip -4 -o addr show dev eth0; ip link show dev eth0; ip route"]);
    await ran(["delete", "-id", "net"]);
    if (vm.privateIp !== undefined) {
      assert.ok(result.stdout.includes(` inet ${vm.privateIp}/24 `), result.stdout);
      assert.match(result.stdout, / mtu 9000 /);
      assert.doesNotMatch(result.stdout, /^default /m);
    } else {
      assert.ok(result.stdout.includes(" inet 10.0.2.15/24 "), result.stdout);
      assert.match(result.stdout, /^default via 10\.0\.2\.2 /m);
    }
  });

  it("serves only clients with a certificate from the cluster's agent CA, logging each refusal in the VM; the node accepts only this VM", async () => {
    const plain = await withAgent(vm.agentEndpoint!, (agent) => agent.health(), 5000).catch((error: unknown) => error);
    assert.ok(plain instanceof Error, "a client without TLS gets nothing");
    const otherCa = join(dir, "other-agent-ca");
    await ensureAgentCa({ outDir: otherCa, validDays: 2, force: true });
    const foreign = await agentctl(ctlBinary, vm.agentEndpoint!, ["health"], "", { dir: otherCa, instance: VM_NAME });
    assert.match(foreign.message ?? "no refusal", /TLS with the agent .*certificate signed by unknown authority/);
    const otherVm = await agentctl(ctlBinary, vm.agentEndpoint!, ["health"], "", { dir: agentCaDir, instance: "another-vm" });
    assert.match(otherVm.message ?? "no refusal", /the agent's certificate is not for VM "another-vm"/);
    const consoleLog = join(dir, "state", "qemu", vm.id, VM_FILES.console);
    await waitFor(async () => ((await readFile(consoleLog, "utf8")).match(/refused a client of the agent port/g)?.length ?? 0) >= 2 || undefined, {
      timeoutMs: 10_000,
      message: "the VM's agent to log the refused clients",
    });
    const timed = async (): Promise<number> => {
      const start = performance.now();
      await health();
      return performance.now() - start;
    };
    const samples = [];
    for (let i = 0; i < 10; i++) samples.push(await timed());
    samples.sort((a, b) => a - b);
    measured.push(`new mutual-TLS connection + Health p50 ${samples[5]!.toFixed(1)} ms`);
  });

  it("keeps serving the node after the CA is rolled under the running VM (which trusts only the CA it booted with)", async () => {
    const before = (await health()).uptime_ms;
    await rotateAgentCa({ outDir: agentCaDir, validDays: 2 });
    assert.equal(bundleCertificates(await readFile(join(agentCaDir, "ca.crt"), "utf8")).length, 2);
    const after = await health();
    assert.ok(after.ready && after.uptime_ms > before, "the same VM answers, over the node's new certificate");
    assert.equal((await ctl(["health"])).ready, true, "the Go client with the rotated folder too");
  });

  it("bad input gets a clear error and the agent serves on", async () => {
    const huge = await ctl(["oversize-tree", "-id", "huge", "-bytes", String(2 ** 40)]);
    assert.equal(huge.code, "ResourceExhausted");
    assert.match(huge.message!, /tar entry "huge" of 1099511627776 bytes does not fit/);
    const otherVersion = await ctl(["call-as-protocol", "7"]);
    assert.equal(otherVersion.code, "FailedPrecondition");
    assert.match(otherVersion.message!, /the client speaks agent protocol version "7", this agent speaks version 1/);
    const malformed = await withAgent(await agentTarget(vm.agentEndpoint!, vm.tags, agentTls), (agent) => agent.call("CreateContainer", Buffer.from([0xff, 0xff, 0xff]))).catch((error: unknown) => error);
    assert.ok(malformed instanceof TtrpcStatusError && malformed.code !== 0, `a malformed request is refused: ${String(malformed)}`);
    const unknown = await ctl(["delete", "-id", "no-such-container"]);
    assert.deepEqual([unknown.code, unknown.message], ["NotFound", 'no container "no-such-container" in this VM']);
    const after = await health();
    assert.equal(after.ready, true);
    assert.ok((after.failed_calls.WriteTree ?? 0) >= 1 && (after.failed_calls.Health ?? 0) >= 1 && (after.failed_calls.CreateContainer ?? 0) >= 1, JSON.stringify(after.failed_calls));
  });

  it("delete leaves nothing behind: no bundle, runc state or cgroup, and the bundle space back to its boot value", async () => {
    const running = await ctl(["delete", "-id", "app"]);
    assert.equal(running.code, "FailedPrecondition", "a running container needs force");
    for (const id of ["facts", "exit3", "client", "huge"]) await ran(["delete", "-id", id]);
    for (const id of ["app", "server"]) await ran(["delete", "-id", id, "-force"]);
    const now = await health();
    assert.equal(now.containers, 0);
    assert.deepEqual(now.leftovers, bootLeftovers);
  });
});
