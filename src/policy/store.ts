import { EventEmitter } from "node:events";
import type { Logger } from "../log/logger.js";
import { policyErrors, policyGeneration } from "../metrics/admission.js";
import type { PolicySpec } from "./schema.js";
import type { PolicyValidationError } from "./issues.js";
import { parsePolicy } from "./schema.js";
import { compilePolicy, type CompiledPolicy } from "./compiled.js";

export interface PolicyUpdate {
  /** Where the document came from, for logs: a file path or `cluster`. */
  source: string;
  document: unknown;
  /** Cluster generation when read from the cluster; otherwise a local counter is used. */
  generation?: number;
}

export type PolicyUpdateResult = { ok: true; policy: CompiledPolicy } | { ok: false; errors: PolicyValidationError[] };

/**
 * Holds the policy in force. Invalid updates, from whatever source, are counted, logged (here, once)
 * and rejected; the last good policy stays. Emits `change` with the new CompiledPolicy after every
 * accepted update.
 */
export class PolicyStore extends EventEmitter<{ change: [CompiledPolicy] }> {
  #current: CompiledPolicy;
  #localGeneration = 1;

  constructor(
    initial: PolicySpec,
    private readonly log: Logger,
  ) {
    super();
    this.#current = compilePolicy(initial, 1);
    policyGeneration.set(1);
  }

  get current(): CompiledPolicy {
    return this.#current;
  }

  update({ document, generation, source }: PolicyUpdate): PolicyUpdateResult {
    const parsed = parsePolicy(document);
    if (!parsed.ok) {
      policyErrors.inc();
      this.log.error({ source, generation, errors: parsed.errors }, "invalid policy rejected; the last good policy stays in force");
      return parsed;
    }
    this.#localGeneration += 1;
    this.#current = compilePolicy(parsed.spec, generation ?? this.#localGeneration);
    policyGeneration.set(this.#current.generation);
    this.emit("change", this.#current);
    return { ok: true, policy: this.#current };
  }
}
