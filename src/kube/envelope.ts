import { parseMilli, parseUnits } from "./quantity.js";
import type { ResourceRequirements } from "./pod.js";

/** What a pod needs from its VM: whole vCPUs, MiB of memory, GPUs (plus the exact figures). */
export interface Envelope {
  cpuMillis: number;
  memoryBytes: number;
  gpus: number;
}

export const MIB = 1024 * 1024;

export const vcpusOf = (e: Envelope): number => Math.ceil(e.cpuMillis / 1000);
export const memoryMiBOf = (e: Envelope): number => Math.ceil(e.memoryBytes / MIB);
export const isEmpty = (e: Envelope): boolean => e.cpuMillis === 0 && e.memoryBytes === 0 && e.gpus === 0;

const ZERO: Envelope = { cpuMillis: 0, memoryBytes: 0, gpus: 0 };

const add = (a: Envelope, b: Envelope): Envelope => ({
  cpuMillis: a.cpuMillis + b.cpuMillis,
  memoryBytes: a.memoryBytes + b.memoryBytes,
  gpus: a.gpus + b.gpus,
});

const max = (a: Envelope, b: Envelope): Envelope => ({
  cpuMillis: Math.max(a.cpuMillis, b.cpuMillis),
  memoryBytes: Math.max(a.memoryBytes, b.memoryBytes),
  gpus: Math.max(a.gpus, b.gpus),
});

/** A container's effective requests: its request, or its limit where it has no request. */
function effective(resources: ResourceRequirements | undefined, name: string): string | undefined {
  return resources?.requests?.[name] ?? resources?.limits?.[name];
}

/** The envelope of one container's resources; throws QuantityError on a bad quantity. */
export function requirementsEnvelope(resources: ResourceRequirements | undefined, gpuNames: Iterable<string>): Envelope {
  const cpu = effective(resources, "cpu");
  const memory = effective(resources, "memory");
  let gpus = 0;
  for (const gpuName of gpuNames) {
    const gpu = effective(resources, gpuName);
    if (gpu !== undefined) gpus += parseUnits(gpu);
  }
  return {
    cpuMillis: cpu === undefined ? 0 : parseMilli(cpu),
    memoryBytes: memory === undefined ? 0 : parseUnits(memory),
    gpus,
  };
}

export interface EnvelopeInput {
  containers: readonly { resources?: ResourceRequirements }[];
  initContainers: readonly { resources?: ResourceRequirements; restartPolicy?: string }[];
  /** Pod-level resources (spec.resources) override the per-container figures where set. */
  podResources?: ResourceRequirements;
}

/**
 * The pod's envelope the way kube-scheduler computes it: per resource, the larger of
 * (app containers + sidecars) and each regular init container plus the sidecars started before it.
 */
export function podEnvelope(input: EnvelopeInput, gpuNames: Iterable<string>): Envelope {
  const gpuList = [...gpuNames];
  let sidecars = ZERO;
  let initPeak = ZERO;
  for (const init of input.initContainers) {
    const needs = requirementsEnvelope(init.resources, gpuList);
    if (init.restartPolicy === "Always") sidecars = add(sidecars, needs);
    else initPeak = max(initPeak, add(sidecars, needs));
  }
  const running = input.containers.reduce((sum, c) => add(sum, requirementsEnvelope(c.resources, gpuList)), sidecars);
  const envelope = max(running, initPeak);
  return input.podResources ? overridePodLevel(envelope, requirementsEnvelope(input.podResources, gpuList), input.podResources) : envelope;
}

function overridePodLevel(envelope: Envelope, podLevel: Envelope, resources: ResourceRequirements): Envelope {
  const set = (name: string): boolean => effective(resources, name) !== undefined;
  return {
    cpuMillis: set("cpu") ? podLevel.cpuMillis : envelope.cpuMillis,
    memoryBytes: set("memory") ? podLevel.memoryBytes : envelope.memoryBytes,
    gpus: envelope.gpus,
  };
}

export function describeEnvelope(e: Envelope): string {
  const gpu = e.gpus > 0 ? `, ${e.gpus} GPU` : "";
  return `${e.cpuMillis}m CPU (${vcpusOf(e)} vCPU), ${memoryMiBOf(e)} MiB memory${gpu}`;
}
