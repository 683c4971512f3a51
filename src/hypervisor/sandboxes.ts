import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import type { Logger } from "../log/logger.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { agentTarget, type AgentTarget } from "../agent-tls/target.js";
import type { AgentTls } from "../agent-tls/store.js";
import { ProviderError, TAG, type Instance, type Provider, type Tags } from "../providers/types.js";
import { describeTarget, type SandboxTarget } from "./annotations.js";
import type { ClusterView } from "./cluster.js";
import { probeEndpoint, startForwarder, type Forwarder } from "./forwarder.js";
import { agentSocketPath, RECORD_FILE } from "./layout.js";
import { connectPodNetwork, networkStateSchema, type SandboxNetworkOptions } from "./sandbox-network.js";
import type { SandboxPod, Tell } from "./tell.js";
import { Code, RpcError } from "./ttrpc.js";
import { pickLive, planInstance, type PodRef, type WorkerRecord } from "./vms.js";

export interface SandboxesOptions {
  /** One folder per sandbox: its agent socket and the record that survives a restart. */
  podsDir: string;
  clusterId: string;
  provider: () => Promise<Provider>;
  policy: () => CompiledPolicy;
  /** Absent when no cluster is configured: every pod is then unknown. */
  cluster?: ClusterView;
  log: Logger;
  /** Longest StartVM waits for the agent when the shim sets no deadline. */
  startTimeoutMs?: number;
  /** First interval between looks at a starting VM; it grows with the wait, up to 2 s. */
  pollMs?: number;
  onConnections?: (delta: number) => void;
  /** Events on a sandbox's pod, for what is found after CreateVM and StartVM answered (an agent that is not kata-agent). */
  tell?: Tell;
  /** Mutual TLS to the VMs' agents; absent: plain TCP. */
  agentTls?: AgentTls;
  /** Connects each sandbox's pod network namespace to its VM; absent: pods get no network in their VMs. */
  network?: SandboxNetworkOptions;
}

const recordSchema = z.object({
  sandboxId: z.string(),
  instanceId: z.string(),
  pod: z.string(),
  podUID: z.string().optional(),
  podResourceVersion: z.string().optional(),
  /** The pod's network namespace on the node, from CreateVM. */
  netns: z.string().optional(),
  network: networkStateSchema.optional(),
});
type SandboxRecord = z.infer<typeof recordSchema>;

/** The pod behind a sandbox's annotations, and what the cluster says of it. */
export interface Identified {
  target: SandboxTarget;
  pod?: PodRef;
  /** The worker's record of this very pod (same UID). */
  record?: WorkerRecord;
}

/** The sandbox's pod for logs and Events, with its uid and resourceVersion where the cluster (or CRI-O's sandbox name) gave them. */
export function sandboxPod({ target, pod }: Identified): SandboxPod {
  const uid = pod?.uid ?? target.uid;
  const resourceVersion = pod?.resourceVersion;
  return { pod: describeTarget(target), ...(uid && { podUID: uid }), ...(resourceVersion && { podResourceVersion: resourceVersion }) };
}

/** What the Kata shim speaks to the agent socket, and so what the VM's agent must answer. */
const EXPECTED_AGENT = "kata-agent, which speaks ttrpc";

export interface Sandbox {
  record: SandboxRecord;
  socketPath: string;
  /** The VM was already there (made by the worker at bind time, or an earlier CreateVM). */
  attached: boolean;
  forwarder: Forwarder;
  /** The agent endpoint and the VM's tags (its agent identity), once StartVM or a connection found them. */
  agent: { endpoint?: string; tags?: Tags };
  /** The VM has been up for the sandbox (StartVM answered, or an earlier run restored it). */
  started: boolean;
}

/** A VM that was up for its sandbox and is gone now: the pod's containers went with it. */
export class VmLostError extends RpcError {
  readonly reason = "VMLost";
  constructor(message: string) {
    super(Code.FAILED_PRECONDITION, message);
  }
}

const MAX_POLL_MS = 2000;
/** Sandbox ids become folder names: nothing that could climb out of the pods folder. */
const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** The VMs behind the Kata sandboxes on this node, each with its forwarded agent socket. */
export class Sandboxes {
  readonly #sandboxes = new Map<string, Promise<Sandbox>>();
  readonly #startTimeoutMs: number;
  readonly #pollMs: number;

  constructor(private readonly options: SandboxesOptions) {
    this.#startTimeoutMs = options.startTimeoutMs ?? 300_000;
    this.#pollMs = options.pollMs ?? 200;
  }

  static validId(id: string): boolean {
    return SANDBOX_ID.test(id);
  }

  /**
   * Finds or creates the sandbox's VM and opens its agent socket; a second call for the same id
   * returns the first one's sandbox. `netnsPath` is the pod's network namespace on the node.
   */
  create(id: string, found: Identified, netnsPath = ""): Promise<Sandbox> {
    const existing = this.#sandboxes.get(id);
    if (existing) return existing;
    const created = this.#create(id, found, netnsPath);
    this.#sandboxes.set(id, created);
    created.catch(() => {
      if (this.#sandboxes.get(id) === created) this.#sandboxes.delete(id);
    });
    return created;
  }

  /** The sandbox's pod, if the sandbox is known here. */
  async podOf(id: string): Promise<SandboxPod | undefined> {
    const sandbox = await this.#sandboxes.get(id)?.catch(() => undefined);
    return sandbox?.record ?? (Sandboxes.validId(id) ? await readRecord(this.#dir(id)) : undefined);
  }

  /** Resolves once the VM is ready and its agent endpoint accepts connections. */
  async start(id: string, signal: AbortSignal): Promise<Sandbox> {
    const sandbox = await this.#sandboxes.get(id);
    if (!sandbox) throw new RpcError(Code.NOT_FOUND, `no sandbox ${id} on this node: CreateVM was not called for it, or StopVM already was`);
    const provider = await this.options.provider();
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.#startTimeoutMs)]);
    const started = Date.now();
    let last: Poll = { kind: "waiting", instance: undefined };
    while (!deadline.aborted) {
      last = await pollAgent(provider, sandbox, this.options.agentTls).catch((error: unknown) => {
        throw sandbox.started && error instanceof RpcError && error.code === Code.FAILED_PRECONDITION ? new VmLostError(`${error.message}; the pod's containers went with it`) : error;
      });
      if (last.kind === "reachable") {
        Object.assign(sandbox.agent, { endpoint: last.target.endpoint, tags: last.instance.tags });
        await this.#connectNetwork(sandbox, last);
        sandbox.started = true;
        return sandbox;
      }
      // Quick for a VM that is nearly there, gentle on the cloud's API for one that boots for minutes.
      const pause = Math.min(MAX_POLL_MS, Math.max(this.#pollMs, (Date.now() - started) / 10));
      await sleep(pause, undefined, { signal: deadline }).catch(() => undefined);
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    throw new RpcError(Code.DEADLINE_EXCEEDED, `the agent of VM ${sandbox.record.instanceId} (pod ${sandbox.record.pod}) was not reachable after ${seconds}s (${describePoll(last)})`);
  }

  /** Deletes the sandbox's VM, closes its agent socket and removes its folder; an unknown id is already stopped. */
  async stop(id: string): Promise<SandboxRecord | undefined> {
    const pending = this.#sandboxes.get(id);
    this.#sandboxes.delete(id);
    const sandbox = pending && (await pending.catch(() => undefined));
    await sandbox?.forwarder.close();
    const record = sandbox?.record ?? (await readRecord(this.#dir(id)));
    if (record) await this.#disconnectNetwork(record);
    if (record) await this.#deleteVM(record.instanceId);
    await rm(this.#dir(id), { recursive: true, force: true });
    return record;
  }

  /** Deletes a VM; a delete that fails because the VM went meanwhile (the worker's teardown of the same pod) has done its job. */
  async #deleteVM(instanceId: string): Promise<void> {
    const provider = await this.options.provider();
    try {
      await provider.delete(instanceId);
    } catch (error) {
      const now = await provider.get(instanceId).catch(() => {
        throw providerRpcError(error);
      });
      if (now && now.state !== "terminated") throw providerRpcError(error);
    }
  }

  /** Reopens the agent sockets of the sandboxes a previous run left (their VMs live on). */
  async restore(): Promise<number> {
    const entries = await readdir(this.options.podsDir, { withFileTypes: true }).catch(() => []);
    let restored = 0;
    for (const entry of entries) {
      if (!entry.isDirectory() || !SANDBOX_ID.test(entry.name)) continue;
      const record = await readRecord(this.#dir(entry.name));
      if (!record || record.sandboxId !== entry.name) continue;
      const opened = this.#open(record, true);
      this.#sandboxes.set(record.sandboxId, opened);
      try {
        (await opened).started = true;
        restored++;
      } catch (error) {
        this.#sandboxes.delete(record.sandboxId);
        this.options.log.warn({ err: error, sandbox: record.sandboxId, pod: record.pod }, "could not reopen a sandbox's agent socket");
      }
    }
    return restored;
  }

  /** Closes every agent socket; VMs and records stay for the next run. */
  async close(): Promise<void> {
    const sandboxes = await Promise.allSettled([...this.#sandboxes.values()]);
    this.#sandboxes.clear();
    await Promise.all(sandboxes.map((s) => (s.status === "fulfilled" ? s.value.forwarder.close() : undefined)));
  }

  #dir(id: string): string {
    return join(this.options.podsDir, id);
  }

  async #create(id: string, found: Identified, netnsPath: string): Promise<Sandbox> {
    const { instance, attached } = await this.#acquire(id, found);
    const record: SandboxRecord = { sandboxId: id, instanceId: instance.id, ...sandboxPod(found), ...(netnsPath && { netns: netnsPath }) };
    await this.#writeRecord(record);
    return this.#open(record, attached);
  }

  async #writeRecord(record: SandboxRecord): Promise<void> {
    await mkdir(this.#dir(record.sandboxId), { recursive: true });
    await writeFile(join(this.#dir(record.sandboxId), RECORD_FILE), JSON.stringify(record));
  }

  /** Once per sandbox, when its VM is first reachable: the pod's namespace on the node is tied to the VM. */
  async #connectNetwork(sandbox: Sandbox, reachable: Reachable): Promise<void> {
    const { record } = sandbox;
    const { network } = this.options;
    if (!network || !record.netns || record.network) return;
    record.network = await connectPodNetwork(network, { id: record.sandboxId, who: record, netnsPath: record.netns, instance: reachable.instance, target: reachable.target });
    // A StopVM meanwhile removed the sandbox's folder: writing would bring it back.
    if (this.#sandboxes.has(record.sandboxId)) await this.#writeRecord(record);
  }

  /** Takes the tunnel out of the pod's namespace (gone with the namespace if CNI removed it first); a failure does not keep the VM. */
  async #disconnectNetwork(record: SandboxRecord): Promise<void> {
    const { network } = this.options;
    if (!network || !record.netns) return;
    await network.networker.detach(record.netns).catch((error: unknown) => {
      this.options.log.warn({ err: error, pod: record.pod, sandbox: record.sandboxId }, "could not remove the pod network's tunnel from the pod's namespace");
    });
  }

  /** The pod's VM if the worker (or an earlier run) already has one, else a new one from the plan. */
  async #acquire(id: string, { target, pod, record }: Identified): Promise<{ instance: Instance; attached: boolean }> {
    const provider = await this.options.provider();
    const uid = pod?.uid ?? target.uid;
    try {
      const live = uid && (await this.#liveFor(provider, uid, record?.instanceID));
      if (live) return { instance: live, attached: true };
      const plan = planInstance({ sandboxId: id, target, clusterId: this.options.clusterId, ...(pod ? { pod } : {}), ...(record ? { record } : {}) }, this.options.policy());
      if (!plan.ok) throw new RpcError(Code.FAILED_PRECONDITION, `no VM for pod ${describeTarget(target)}: ${plan.reason}`);
      return { instance: await provider.create(plan.spec), attached: false };
    } catch (error) {
      throw error instanceof RpcError ? error : providerRpcError(error);
    }
  }

  /** The pod and the worker's record of it, as far as the cluster can tell (never throws: an unknown pod gets a VM from its annotations). */
  async identify(target: SandboxTarget): Promise<Identified> {
    const { cluster } = this.options;
    const { namespace, name } = target;
    if (!cluster || !namespace || !name) return { target };
    const [pod, record] = await Promise.all([cluster.pod(namespace, name), cluster.record(namespace, name)]);
    const uid = pod?.uid ?? target.uid;
    // A record left by an earlier pod of the same name is not this pod's.
    return { target, ...(pod ? { pod } : {}), ...(uid && record?.podUID === uid ? { record } : {}) };
  }

  async #liveFor(provider: Provider, podUid: string, recordedId: string | undefined): Promise<Instance | undefined> {
    const recorded = recordedId ? await provider.get(recordedId) : undefined;
    return pickLive(recorded ? [recorded] : await provider.list({ [TAG.cluster]: this.options.clusterId, [TAG.podUid]: podUid }));
  }

  async #open(record: SandboxRecord, attached: boolean): Promise<Sandbox> {
    const socketPath = agentSocketPath(this.options.podsDir, record.sandboxId);
    const log = this.options.log.child({ pod: record.pod, sandbox: record.sandboxId, instanceId: record.instanceId });
    const agent: Sandbox["agent"] = {};
    let toldForeign = false;
    let toldRefused = false;
    const forwarder = await startForwarder({
      path: socketPath,
      target: async () => {
        if (!agent.endpoint) Object.assign(agent, await this.#agentEndpoint(record.instanceId));
        return agentTarget(agent.endpoint!, agent.tags ?? {}, this.options.agentTls);
      },
      log,
      ...(this.options.onConnections ? { onConnections: this.options.onConnections } : {}),
      onForeignAgent: (answer) => {
        if (toldForeign) return log.debug("agent answered outside ttrpc again; connection closed");
        toldForeign = true;
        void this.#tellForeignAgent(record, answer, log);
      },
      onRefused: (error) => {
        if (toldRefused) return;
        toldRefused = true;
        this.options.tell?.(record, "Warning", "AgentTLSRefused", `mutual TLS with the agent of VM ${record.instanceId} failed (${error.message}); its connections are closed`);
      },
    });
    return { record, socketPath, attached, forwarder, agent, started: false };
  }

  /** Says, once per sandbox, in the log and on the pod, that the VM's agent does not speak the shim's protocol. */
  async #tellForeignAgent(record: SandboxRecord, answer: Buffer, log: Logger): Promise<void> {
    const image = await this.options
      .provider()
      .then((provider) => provider.get(record.instanceId))
      .then((instance) => instance?.image)
      .catch(() => undefined);
    const answered = JSON.stringify(answer.toString("latin1", 0, 60).replace(/[^\x20-\x7e]/g, "."));
    const message = `the agent of VM ${record.instanceId} (image ${image ?? "unknown"}) answered ${answered} to the Kata shim's ttrpc request: the shim expects ${EXPECTED_AGENT}; its connections are closed at once`;
    log.warn({ image }, message);
    this.options.tell?.(record, "Warning", "SandboxAgentProtocolMismatch", message);
  }

  async #agentEndpoint(instanceId: string): Promise<Required<Sandbox["agent"]>> {
    const instance = await (await this.options.provider()).get(instanceId);
    if (!instance?.agentEndpoint) throw new Error(`VM ${instanceId} has no agent endpoint yet`);
    return { endpoint: instance.agentEndpoint, tags: instance.tags };
  }
}

interface Reachable {
  kind: "reachable";
  target: AgentTarget;
  instance: Instance;
}
type Poll = Reachable | { kind: "waiting"; instance: Instance | undefined } | { kind: "providerError"; error: Error };

/** One look at the sandbox's VM: gone (throws), reachable, or not yet. */
async function pollAgent(provider: Provider, sandbox: Sandbox, agentTls: AgentTls | undefined): Promise<Poll> {
  let instance: Instance | undefined;
  try {
    instance = await provider.get(sandbox.record.instanceId);
  } catch (error) {
    if (error instanceof ProviderError && error.kind === "retryable") return { kind: "providerError", error };
    throw providerRpcError(error);
  }
  if (!instance || instance.state === "stopping" || instance.state === "terminated") {
    const why = instance?.message ? `: ${instance.message}` : "";
    throw new RpcError(Code.FAILED_PRECONDITION, `VM ${sandbox.record.instanceId} of pod ${sandbox.record.pod} is ${instance?.state ?? "gone"}${why}`);
  }
  const endpoint = instance.agentEndpoint;
  if (!instance.ready || !endpoint) return { kind: "waiting", instance };
  const target = await agentTarget(endpoint, instance.tags, agentTls).catch((error: unknown) => {
    throw new RpcError(Code.FAILED_PRECONDITION, `VM ${sandbox.record.instanceId} of pod ${sandbox.record.pod}: ${(error as Error).message}`);
  });
  if (await probeEndpoint(target, 1000)) return { kind: "reachable", target, instance };
  return { kind: "waiting", instance };
}

function describePoll(poll: Poll): string {
  if (poll.kind === "providerError") return `last provider error: ${poll.error.message}`;
  if (poll.kind === "reachable" || !poll.instance) return "no answer from the provider";
  const { state, ready, agentEndpoint } = poll.instance;
  return `state ${state}, ready ${ready}, agent endpoint ${agentEndpoint ?? "none"}`;
}

async function readRecord(dir: string): Promise<SandboxRecord | undefined> {
  const text = await readFile(join(dir, RECORD_FILE), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = recordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The status the shim sees for a failed provider call. */
function providerRpcError(error: unknown): RpcError {
  const message = (error as Error).message;
  if (!(error instanceof ProviderError)) return new RpcError(Code.INTERNAL, message);
  const code = { retryable: Code.UNAVAILABLE, quota: Code.RESOURCE_EXHAUSTED, invalid: Code.INVALID_ARGUMENT, notFound: Code.NOT_FOUND }[error.kind];
  return new RpcError(code, `cloud provider: ${message}`);
}
