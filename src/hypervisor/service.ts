import { createRequire } from "node:module";
import type { Logger } from "../log/logger.js";
import { parseSandboxAnnotations } from "./annotations.js";
import { HYPERVISOR_SERVICE, hypervisorMessages as m, type Codec } from "./protos.js";
import { PodNetworkError } from "./sandbox-network.js";
import { Sandboxes, sandboxPod, VmLostError } from "./sandboxes.js";
import type { SandboxPod, Tell } from "./tell.js";
import { Code, RpcError, type Services } from "./ttrpc.js";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

function decode<T>(codec: Codec<T>, payload: Buffer): T {
  try {
    return codec.decode(payload);
  } catch (error) {
    throw new RpcError(Code.INVALID_ARGUMENT, `malformed request: ${(error as Error).message}`);
  }
}

function sandboxId(id: string): string {
  if (!Sandboxes.validId(id)) throw new RpcError(Code.INVALID_ARGUMENT, `sandbox id ${JSON.stringify(id.slice(0, 80))} must be 1-128 letters, digits, '.', '_' or '-'`);
  return id;
}

/** Kata's `hypervisor.Hypervisor` service over the node's sandboxes; each outcome is logged with the pod and, where there is a cluster, an Event on it. */
export function hypervisorService(sandboxes: Sandboxes, log: Logger, tell: Tell = () => undefined): Services {
  /** Runs a call for a sandbox; a failure is logged and told on the pod before the shim gets it. */
  const reported = async <T>(call: string, id: string, pod: () => Promise<SandboxPod | undefined>, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      const who = (await pod()) ?? { pod: "?/?" };
      log.warn({ pod: who.pod, sandbox: id, err: error }, `${call} failed`);
      const reason = error instanceof VmLostError || error instanceof PodNetworkError ? error.reason : `Sandbox${call}Failed`;
      tell(who, "Warning", reason, `${call} for Kata sandbox ${id.slice(0, 12)}: ${(error as Error).message}`);
      throw error;
    }
  };
  return {
    [HYPERVISOR_SERVICE]: {
      Version: async () => m.versionResponse.encode({ version }),

      CreateVM: async (payload) => {
        const request = decode(m.createVMRequest, payload);
        const id = sandboxId(request.id);
        const target = parseSandboxAnnotations(request.annotations);
        const started = Date.now();
        const found = await sandboxes.identify(target);
        const who = sandboxPod(found);
        if (target.ignored.length) log.warn({ pod: who.pod, sandbox: id, ignored: target.ignored }, "CreateVM: annotations ignored");
        const sandbox = await reported("CreateVM", id, async () => who, () => sandboxes.create(id, found, request.networkNamespacePath));
        const { instanceId } = sandbox.record;
        log.child({ pod: sandbox.record.pod, sandbox: id }).info(
          { instanceId, attached: sandbox.attached, ms: Date.now() - started },
          sandbox.attached ? "CreateVM: attached to the pod's VM" : "CreateVM: VM requested",
        );
        tell(sandbox.record, "Normal", "SandboxVM", `Kata sandbox ${id.slice(0, 12)} runs in VM ${instanceId}${sandbox.attached ? " (started when the pod was bound)" : ""}`);
        return m.createVMResponse.encode({ agentSocketPath: sandbox.socketPath });
      },

      StartVM: async (payload, { signal }) => {
        const id = sandboxId(decode(m.startVMRequest, payload).id);
        const started = Date.now();
        const sandbox = await reported("StartVM", id, () => sandboxes.podOf(id), () => sandboxes.start(id, signal));
        log.child({ pod: sandbox.record.pod, sandbox: id }).info({ instanceId: sandbox.record.instanceId, ms: Date.now() - started }, "StartVM: agent reachable");
        return m.startVMResponse.encode({});
      },

      StopVM: async (payload) => {
        const id = sandboxId(decode(m.stopVMRequest, payload).id);
        const pod = await sandboxes.podOf(id);
        const record = await reported("StopVM", id, async () => pod, () => sandboxes.stop(id));
        if (record) log.child({ pod: record.pod, sandbox: id }).info({ instanceId: record.instanceId }, "StopVM: VM deleted, agent socket removed");
        else log.info({ sandbox: id }, "StopVM: no such sandbox (already stopped)");
        return m.stopVMResponse.encode({});
      },
    },
  };
}
