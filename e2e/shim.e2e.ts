/**
 * containerd-shim-peerpods-v2 with the real containerd of the real node, the hypervisor part and a
 * qemu pod VM: `ctr run --runtime io.containerd.peerpods.v2` runs busybox in the VM, not on the host.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { promisify } from "node:util";
import { CoreV1Api, Log, type CoreV1Event, type V1Container, type V1ContainerStatus, type V1Pod } from "@kubernetes/client-node";
import { defaultImageDir, readManifest } from "../src/providers/qemu/image/paths.js";
import { startRealNode, type RealNode } from "./cluster/node/node.js";
import { containerdBinary, NODE_IMAGES } from "./cluster/node/paths.js";
import { cluster } from "./setup.js";
import { trackedTempDir } from "./support/leftovers.js";
import type { Peerpods } from "./support/peerpods.js";
import { ensurePeerpodsRuntimeClass, killMentioning, PEERPODS_RUNTIME_CLASS, PEERPODS_RUNTIME_TYPE, peerpodsContainerd, startNodeHypervisor } from "./support/peerpods-node.js";
import { RECORD_FILE } from "../src/hypervisor/layout.js";
import { processesMentioning } from "./support/processes.js";
import { execInPod } from "./support/exec.js";
import { createNamespace, removeNamespaceNow } from "./support/suite.js";
import { waitFor } from "./support/wait.js";

const run = promisify(execFile);
const SHIM = "containerd-shim-peerpods-v2";
const NAMESPACE = "shim-e2e";
const RUNTIME_CLASS = PEERPODS_RUNTIME_CLASS;
const BOOT_TIMEOUT_MS = 180_000;
const POLICY = { instanceTypes: [{ name: "small", vcpus: 1, memoryMiB: 256 }], provider: { name: "qemu", qemu: { maxVMs: 2 } } };

interface CtrRun {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Mounts whose source or target names the shim's rootfs folders. */
const rootfsMounts = (): string[] => readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((line) => line.includes("peerpods-rootfs-"));

describe("containerd-shim-peerpods-v2: real containerd, the hypervisor part, a qemu pod VM", function () {
  this.timeout(BOOT_TIMEOUT_MS);
  let dir: string;
  let node: RealNode;
  let peerpods: Peerpods;
  let socket: string;
  let core: CoreV1Api;
  const measured: string[] = [];

  const peerpodsPod = (name: string, script: string): V1Pod => ({
    metadata: { name, namespace: NAMESPACE },
    spec: {
      runtimeClassName: RUNTIME_CLASS,
      nodeName: node.name,
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script] }],
    },
  });
  /** Waits for the pod's container status to show what `pick` looks for; the error carries containerd's log. */
  const untilContainer = <T>(name: string, pick: (status: V1ContainerStatus) => T | undefined): Promise<T> => {
    let last: V1ContainerStatus | undefined;
    return waitFor(async () => {
      last = (await core.readNamespacedPod({ name, namespace: NAMESPACE })).status?.containerStatuses?.[0];
      return last ? pick(last) : undefined;
    }, { timeoutMs: BOOT_TIMEOUT_MS / 2, message: `pod ${name}'s container` }).catch((error: unknown) => {
      const seen = last && { state: last.state, lastState: last.lastState, restartCount: last.restartCount };
      throw new Error(`${(error as Error).message}\nlast status: ${JSON.stringify(seen)}\ncontainerd: ${node.logTail("containerd")}`);
    });
  };
  const deletePod = async (name: string): Promise<void> => {
    await core.deleteNamespacedPod({ name, namespace: NAMESPACE });
    await waitFor(async () => !(await core.listNamespacedPod({ namespace: NAMESPACE })).items.some((p) => p.metadata?.name === name), { timeoutMs: 60_000, message: `pod ${name} to be gone` });
    await waitFor(async () => (await processesMentioning(SHIM)).length === 0, { timeoutMs: 30_000, message: "the pod's shim to exit" });
  };

  /** `ctr run` of busybox as a task of its own (its own VM), with the pod identity the hypervisor part wants. */
  const ctrRun = async (id: string, script: string): Promise<CtrRun> => {
    const annotations = { "io.kubernetes.cri.sandbox-name": id, "io.kubernetes.cri.sandbox-namespace": "shim-e2e", "io.kubernetes.cri.sandbox-uid": randomUUID() };
    const args = ["--address", node.containerdSocket, "--namespace", "k8s.io", "run", "--rm", "--runtime", PEERPODS_RUNTIME_TYPE];
    for (const [key, value] of Object.entries(annotations)) args.push("--annotation", `${key}=${value}`);
    args.push(NODE_IMAGES.busybox.name, id, "sh", "-c", script);
    try {
      const { stdout, stderr } = await run(containerdBinary("ctr"), args, { timeout: BOOT_TIMEOUT_MS });
      return { stdout, stderr, exitCode: 0 };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      if (typeof failed.code !== "number") throw error;
      return { stdout: failed.stdout ?? "", stderr: failed.stderr ?? "", exitCode: failed.code };
    }
  };

  const startHypervisorPart = (): Promise<Peerpods> => startNodeHypervisor(cluster().kubeconfigPath, dir, "shim-e2e");
  /** The qemu VM of the pod's sandbox, as the hypervisor part recorded it. */
  const vmOf = async (pod: string): Promise<string> => {
    const records = await Promise.all((await readdir(join(dir, "pods"))).map((id) => readFile(join(dir, "pods", id, RECORD_FILE), "utf8").catch(() => "{}")));
    const found = records.map((text) => JSON.parse(text) as { pod?: string; instanceId?: string }).find((record) => record.pod === `${NAMESPACE}/${pod}`);
    assert.ok(found?.instanceId, `a sandbox record for pod ${pod}`);
    return found.instanceId;
  };
  /** The qemu processes of pod VMs (not the provider's probe boots). */
  const podVMs = (): Promise<number[]> => processesMentioning(`${join(dir, "state", "qemu")}/`);
  const eventsOf = async (pod: string): Promise<CoreV1Event[]> => (await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: `involvedObject.name=${pod}` })).items;

  before(async function () {
    this.timeout(BOOT_TIMEOUT_MS);
    dir = trackedTempDir("pp-shim-");
    socket = join(dir, "hypervisor.sock");
    await writeFile(join(dir, "policy.json"), JSON.stringify(POLICY));
    peerpods = await startHypervisorPart();
    node = await startRealNode(cluster(), {
      containerd: await peerpodsContainerd(socket),
    });
    core = cluster().kc.makeApiClient(CoreV1Api);
    await createNamespace(core, NAMESPACE);
    await ensurePeerpodsRuntimeClass(cluster().kc);
  });

  after(async function () {
    this.timeout(60_000);
    if (core) await removeNamespaceNow(core, NAMESPACE);
    await node?.stop();
    if (peerpods) await peerpods.stop();
    if (measured.length > 0) console.log(`      ${measured.join("; ")}`);
    assert.deepEqual(node?.leftovers() ?? [], [], "the node left nothing on the host");
    assert.deepEqual(await processesMentioning(`${dir}/`), [], "no qemu process left");
  });

  it("busybox prints the pod VM's kernel release, not the host's, and its exit code comes back", async () => {
    const kernel = (await readManifest(defaultImageDir()))!.kernelRelease;
    assert.notEqual(kernel, release(), "the image's kernel is not the host's (else the check means nothing)");
    const started = Date.now();
    const result = await ctrRun("shim-uname", "uname -r; exit 3");
    measured.push(`ctr run → exit (VM boot, rootfs shipped, uname) ${Date.now() - started} ms`);
    const logs = (): string => `ctr: ${result.stderr}\ncontainerd: ${node.logTail("containerd")}`;
    assert.deepEqual([result.stdout, result.exitCode], [`${kernel}\n`, 3], logs());
  });

  it("through the CRI: kubelet runs a peerpods pod whose container logs the VM's kernel, reads its ConfigMap read-only and exits 3", async () => {
    const kernel = (await readManifest(defaultImageDir()))!.kernelRelease;
    const started = Date.now();
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: { metadata: { name: "greeting" }, data: { greeting: "hello from a ConfigMap" } } });
    const body = peerpodsPod("uname", "uname -r; cat /config/greeting; echo; touch /config/x 2>/dev/null && echo writable; exit 3");
    body.spec!.volumes = [{ name: "config", configMap: { name: "greeting" } }];
    body.spec!.containers[0]!.volumeMounts = [{ name: "config", mountPath: "/config", readOnly: true }];
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    const terminated = await untilContainer("uname", (status) => status.state?.terminated);
    measured.push(`pod created → container terminated ${Date.now() - started} ms`);
    assert.equal(terminated.exitCode, 3);
    assert.equal(await core.readNamespacedPodLog({ name: "uname", namespace: NAMESPACE, container: "app" }), `${kernel}\nhello from a ConfigMap\n`);
    await deletePod("uname");
  });

  it("an init container runs first; two app containers share the pod's VM and its emptyDir", async () => {
    const app = (name: string, script: string): V1Container => ({ name, image: "busybox", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script], volumeMounts: [{ name: "shared", mountPath: "/shared" }] });
    const body = peerpodsPod("shared", "");
    body.spec!.volumes = [{ name: "shared", emptyDir: {} }];
    body.spec!.initContainers = [app("init", "echo from init > /shared/init")];
    body.spec!.containers = [
      app("writer", "echo from writer > /shared/writer; sleep 3600"),
      app("reader", "until [ -f /shared/writer ]; do sleep 0.2; done; cat /shared/init /shared/writer; sleep 3600"),
    ];
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    const read = await waitFor(
      async () => {
        const log = await core.readNamespacedPodLog({ name: "shared", namespace: NAMESPACE, container: "reader" }).catch(() => "");
        return log.endsWith("from writer\n") ? log : undefined;
      },
      { timeoutMs: BOOT_TIMEOUT_MS / 2, message: "the reader to see the writer's file" },
    );
    assert.equal(read, "from init\nfrom writer\n");
    assert.equal((await processesMentioning(SHIM)).length, 1, "one shim, so one VM, for the pod's three containers");
    await deletePod("shared");
  });

  it("the container runs as its spec says: args, env, workingDir, runAsUser; a Secret read-only; the ServiceAccount token readable", async () => {
    await core.createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: "password" }, stringData: { password: "s3cret" } } });
    const script = [
      'echo "args: $*"; echo "env: $GREETING"; echo "cwd: $(pwd)"; echo "uid: $(id -u)"',
      'echo "secret: $(cat /secret/password)"',
      "awk '$2 == \"/secret\" { split($4, o, \",\"); print \"mount: \" $2 \" \" o[1] }' /proc/mounts",
      'echo "token: $(head -c 3 /var/run/secrets/kubernetes.io/serviceaccount/token)"',
    ].join("\n");
    const body = peerpodsPod("spec", "");
    body.spec!.automountServiceAccountToken = true;
    body.spec!.volumes = [{ name: "secret", secret: { secretName: "password" } }];
    body.spec!.containers[0] = {
      ...body.spec!.containers[0]!,
      command: ["sh", "-c"],
      args: [script, "sh", "first", "second"],
      env: [{ name: "GREETING", value: "hello from env" }],
      workingDir: "/etc",
      securityContext: { runAsUser: 1000 },
      volumeMounts: [{ name: "secret", mountPath: "/secret", readOnly: true }],
    };
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    const terminated = await untilContainer("spec", (status) => status.state?.terminated);
    const log = await core.readNamespacedPodLog({ name: "spec", namespace: NAMESPACE, container: "app" });
    assert.equal(log, "args: first second\nenv: hello from env\ncwd: /etc\nuid: 1000\nsecret: s3cret\nmount: /secret ro\ntoken: eyJ\n");
    assert.equal(terminated.exitCode, 0);
    await deletePod("spec");
  });

  it("kubectl exec runs in the pod's VM, with stdin and with a resized terminal, and returns the command's exit code", async () => {
    const kernel = (await readManifest(defaultImageDir()))!.kernelRelease;
    const created = Date.now();
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerpodsPod("sleeper", "sleep 3600") });
    await untilContainer("sleeper", (status) => status.state?.running);
    measured.push(`pod created → container Running ${Date.now() - created} ms`);
    const started = Date.now();
    const result = await execInPod(cluster().kc, NAMESPACE, "sleeper", "app", ["sh", "-c", "uname -r; exit 5"]);
    measured.push(`exec round trip ${Date.now() - started} ms`);
    assert.equal(result.stdout, `${kernel}\n`);
    assert.deepEqual(result.status.details?.causes, [{ reason: "ExitCode", message: "5" }]);

    const piped = Date.now();
    const echoed = await execInPod(cluster().kc, NAMESPACE, "sleeper", "app", ["sh", "-c", "cat; exit 4"], { stdin: Readable.from(["hello through cat\n"]) });
    measured.push(`exec -i round trip ${Date.now() - piped} ms`);
    assert.equal(echoed.stdout, "hello through cat\n", "stdin reached cat and its end let cat exit");
    assert.deepEqual(echoed.status.details?.causes, [{ reason: "ExitCode", message: "4" }]);

    // the line goes in once the terminal's size had time to arrive, so `stty size` reads the resize
    const typed = new PassThrough();
    const typing = setTimeout(() => typed.write("go\n"), 1_500);
    const terminal = await execInPod(cluster().kc, NAMESPACE, "sleeper", "app", ["sh", "-c", "read line; stty size; exit 7"], { stdin: typed, terminal: { rows: 40, columns: 100 } }).finally(() => {
      clearTimeout(typing);
      typed.end();
    });
    assert.match(terminal.stdout, /^go\r\n40 100\r\n$/, "a terminal (it echoes the line typed) of the size the client asked for");
    assert.deepEqual(terminal.status.details?.causes, [{ reason: "ExitCode", message: "7" }]);
    await deletePod("sleeper");
  });

  it("restartPolicy Always: the container is created again under the pod's one shim (so its one VM), restartCount grows", async () => {
    const body = peerpodsPod("restarts", "echo run; exit 1");
    body.spec!.restartPolicy = "Always";
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    await untilContainer("restarts", (status) => (status.restartCount ?? 0) >= 1);
    assert.equal(await core.readNamespacedPodLog({ name: "restarts", namespace: NAMESPACE, container: "app", previous: true }), "run\n");
    assert.equal((await processesMentioning(SHIM)).length, 1, "one shim holds the pod's sandbox and its containers");
    await deletePod("restarts");
  });

  it("a volume too large for the VM: the container does not start, the pod says why, nothing is left", async () => {
    const big = join(dir, "big-volume");
    await mkdir(big);
    await writeFile(join(big, "huge.bin"), "");
    await truncate(join(big, "huge.bin"), 64 * 1024 ** 3);
    const body = peerpodsPod("too-big", "echo never");
    body.spec!.volumes = [{ name: "big", hostPath: { path: big, type: "Directory" } }];
    body.spec!.containers[0]!.volumeMounts = [{ name: "big", mountPath: "/big" }];
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    // containerd makes the task when kubelet starts the container: a refused create is a StartError
    const terminated = await untilContainer("too-big", (status) => status.state?.terminated);
    assert.equal(terminated.reason, "StartError");
    assert.match(terminated.message ?? "", /tar entry "huge\.bin" of 68719476736 bytes does not fit: .* the VM has \d+ bytes free for trees/, "the message names the file the VM has no room for");
    await deletePod("too-big");
    await rm(big, { recursive: true });
  });

  it("delete: the container gets SIGTERM, then SIGKILL once the grace period is over", async () => {
    const body = peerpodsPod("stubborn", "trap 'echo got TERM' TERM; echo ready; while true; do sleep 1; done");
    body.spec!.terminationGracePeriodSeconds = 3;
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    await untilContainer("stubborn", (status) => status.state?.running);
    const log = new PassThrough();
    let followed = "";
    log.on("data", (chunk: Buffer) => (followed += chunk.toString()));
    const following = await new Log(cluster().kc).log(NAMESPACE, "stubborn", "app", log, { follow: true });
    await waitFor(() => followed.includes("ready\n"), { timeoutMs: 10_000, message: "the container to trap TERM" });
    const deleting = Date.now();
    await deletePod("stubborn");
    const took = Date.now() - deleting;
    following.abort();
    measured.push(`delete with a 3 s grace period ${took} ms`);
    assert.match(followed, /got TERM/, "SIGTERM reached the container first");
    assert.ok(took >= 3_000, `the container, which ignores SIGTERM, was killed only after the grace period (${took} ms)`);
  });

  it("the hypervisor part killed and restarted under a running pod: its container runs on in the same VM, logs and exec still work", async () => {
    const body = peerpodsPod("survivor", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done");
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    await untilContainer("survivor", (status) => status.state?.running);
    const vm = await vmOf("survivor");
    const ticks = async (): Promise<number> => (await core.readNamespacedPodLog({ name: "survivor", namespace: NAMESPACE, container: "app" })).split("\n").filter(Boolean).length;
    await waitFor(async () => (await ticks()) >= 2, { timeoutMs: 20_000, message: "the first ticks" });
    await peerpods.kill();
    const down = Date.now();
    peerpods = await startHypervisorPart();
    measured.push(`hypervisor part down → serving again ${Date.now() - down} ms`);
    const before = await ticks();
    await waitFor(async () => (await ticks()) >= before + 3, { timeoutMs: 30_000, message: "ticks after the restart reach the log" });
    const result = await execInPod(cluster().kc, NAMESPACE, "survivor", "app", ["sh", "-c", "echo still here; exit 2"]);
    assert.equal(result.stdout, "still here\n");
    assert.deepEqual(result.status.details?.causes, [{ reason: "ExitCode", message: "2" }]);
    const status = (await core.readNamespacedPod({ name: "survivor", namespace: NAMESPACE })).status?.containerStatuses?.[0];
    assert.ok(status?.state?.running, `still running: ${JSON.stringify(status?.state)}`);
    assert.equal(status?.restartCount, 0);
    assert.equal(await vmOf("survivor"), vm, "the same VM");
    await waitFor(() => peerpods.logs().some((line) => line.msg === "remote hypervisor listening" && line.restored === 1), { timeoutMs: 5_000, message: "the restarted part to log that it reopened the sandbox's agent socket" });
    await deletePod("survivor");
  });

  it("the VM dies under a running pod: its container is reported exited (137) with the reason, and an Event on the pod says why", async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: peerpodsPod("vm-dies", "echo up; sleep 3600") });
    await untilContainer("vm-dies", (status) => status.state?.running);
    const vm = await vmOf("vm-dies");
    const killed = killMentioning(`${join(dir, "state", "qemu", vm)}/`);
    assert.equal(killed, 1, "the pod's one qemu process");
    const terminated = await untilContainer("vm-dies", (status) => status.state?.terminated);
    assert.equal(terminated.exitCode, 137);
    assert.match(terminated.message ?? "", new RegExp(`VM ${vm} of pod ${NAMESPACE}/vm-dies is terminated: qemu exited.*the pod's containers went with it`));
    const event = await waitFor(async () => (await eventsOf("vm-dies")).find((e) => e.reason === "VMLost"), { timeoutMs: 10_000, message: "a VMLost Event" });
    assert.equal(event.type, "Warning");
    assert.match(event.message ?? "", /qemu exited/);
    await deletePod("vm-dies");
  });

  it("the shim SIGKILLed: containerd reports the task gone, kubelet makes the sandbox again and the container runs in a new VM", async () => {
    const body = peerpodsPod("shim-dies", "sleep 3600");
    body.spec!.restartPolicy = "Always";
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    await untilContainer("shim-dies", (status) => status.state?.running);
    const firstVM = await vmOf("shim-dies");
    const shims = await processesMentioning(SHIM);
    assert.equal(shims.length, 1);
    process.kill(shims[0]!, "SIGKILL");
    // containerd's CRI marks the old container exited only after its exit handler gets past deleting the task
    // (retried with a backoff while the dead shim is still on record); kubelet may run the new container first
    const status = await untilContainer("shim-dies", (s) => ((s.restartCount ?? 0) >= 1 && s.state?.running && s.lastState?.terminated ? s : undefined));
    // a task whose wait broke off with its shim gets the unknown exit code, as for runc's shim
    assert.equal(status.lastState?.terminated?.exitCode, 255, "the task that went with its shim is reported exited (unknown exit code)");
    const shimsNow = await processesMentioning(SHIM);
    assert.equal(shimsNow.length, 1, "one shim for the pod's new sandbox");
    assert.notEqual(shimsNow[0], shims[0]);
    assert.notEqual(await vmOf("shim-dies"), firstVM, "the new sandbox's own VM");
    await waitFor(async () => (await podVMs()).length === 1, { timeoutMs: 30_000, message: "the first VM deleted, one VM for the pod" });
    await deletePod("shim-dies");
    await waitFor(async () => (await podVMs()).length === 0, { timeoutMs: 30_000, message: "no pod VM left" });
  });

  it("a plain pod on the same node still runs with runc on the host", async () => {
    const body = peerpodsPod("plain", "uname -r");
    delete body.spec!.runtimeClassName;
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    await untilContainer("plain", (status) => status.state?.terminated);
    assert.equal(await core.readNamespacedPodLog({ name: "plain", namespace: NAMESPACE, container: "app" }), `${release()}\n`);
    assert.deepEqual(await processesMentioning(SHIM), [], "no peerpods shim for a runc pod");
    await deletePod("plain");
  });

  it("the hypervisor part reached every VM's agent over mutual TLS, and refused none", async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`)).text();
    assert.match(metrics, /^peerpods_agent_channel_plaintext 0$/m);
    assert.match(metrics, /^peerpods_agent_tls_refusals_total 0$/m);
    assert.match(metrics, /^peerpods_agent_tls_expiry_timestamp_seconds\{kind="client"\} \d+/m);
  });

  it("leaves no shim process, rootfs mount or agent socket behind", async () => {
    assert.deepEqual(await processesMentioning(SHIM), [], "no shim process left");
    assert.deepEqual(rootfsMounts(), [], "no rootfs mount left");
    const { stdout } = await run("find", [join(dir, "pods"), "-type", "s"]).catch(() => ({ stdout: "" }));
    assert.equal(stdout, "", "no forwarded agent socket left");
  });
});
