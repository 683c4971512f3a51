import { createRequire } from "node:module";
import type { Logger } from "../log/logger.js";
import { describeTarget, parseSandboxAnnotations } from "./annotations.js";
import { HYPERVISOR_SERVICE, hypervisorMessages as m, type Codec } from "./protos.js";
import { Sandboxes } from "./sandboxes.js";
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

/** Kata's `hypervisor.Hypervisor` service over the node's sandboxes. */
export function hypervisorService(sandboxes: Sandboxes, log: Logger): Services {
  return {
    [HYPERVISOR_SERVICE]: {
      Version: async () => m.versionResponse.encode({ version }),

      CreateVM: async (payload) => {
        const request = decode(m.createVMRequest, payload);
        const id = sandboxId(request.id);
        const target = parseSandboxAnnotations(request.annotations);
        if (target.ignored.length) log.warn({ pod: describeTarget(target), sandbox: id, ignored: target.ignored }, "CreateVM: annotations ignored");
        const started = Date.now();
        const sandbox = await sandboxes.create(id, target);
        log.child({ pod: sandbox.record.pod, sandbox: id }).info(
          { instanceId: sandbox.record.instanceId, attached: sandbox.attached, ms: Date.now() - started },
          sandbox.attached ? "CreateVM: attached to the pod's VM" : "CreateVM: VM requested",
        );
        return m.createVMResponse.encode({ agentSocketPath: sandbox.socketPath });
      },

      StartVM: async (payload, { signal }) => {
        const id = sandboxId(decode(m.startVMRequest, payload).id);
        const started = Date.now();
        const sandbox = await sandboxes.start(id, signal);
        log.child({ pod: sandbox.record.pod, sandbox: id }).info({ instanceId: sandbox.record.instanceId, ms: Date.now() - started }, "StartVM: agent reachable");
        return m.startVMResponse.encode({});
      },

      StopVM: async (payload) => {
        const id = sandboxId(decode(m.stopVMRequest, payload).id);
        const record = await sandboxes.stop(id);
        if (record) log.child({ pod: record.pod, sandbox: id }).info({ instanceId: record.instanceId }, "StopVM: VM deleted, agent socket removed");
        else log.info({ sandbox: id }, "StopVM: no such sandbox (already stopped)");
        return m.stopVMResponse.encode({});
      },
    },
  };
}
