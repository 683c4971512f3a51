import { HttpError } from "../http/errors.js";
import type { FilterOutcome, HostPriority } from "./decide.js";
import type { NodeObject, PodObject } from "./state.js";

/** k8s.io/kube-scheduler/extender/v1 ExtenderArgs: JSON keys are capitalised Go field names. */
export interface ExtenderArgs {
  Pod: PodObject;
  /** Full node objects, sent when the extender is not `nodeCacheCapable`. */
  Nodes?: { items?: NodeObject[] } | null;
  /** Node names, sent when it is. */
  NodeNames?: string[] | null;
}

export interface ParsedArgs {
  pod: PodObject;
  nodeNames: string[];
  /** The request's node objects by name when it sent `Nodes`; answers then carry `Nodes` too. */
  nodes?: NodeObject[];
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** Body of a 400: the scheduler reads `Error`; the filter result shape keeps it decodable. */
export const errorBody = (message: string): string => JSON.stringify({ Error: message });

const invalid = (message: string): HttpError => new HttpError(400, message, errorBody(message));

/** The pod's fields the extender reads, which must be strings when set (a JSON object there is not a name). */
const POD_STRINGS = { metadata: ["name", "generateName", "namespace", "uid"], spec: ["runtimeClassName"] } as const;

function checkPodFields(pod: { metadata: Record<string, unknown>; spec: Record<string, unknown> }): void {
  for (const part of ["metadata", "spec"] as const) {
    for (const field of POD_STRINGS[part]) {
      const value = pod[part][field];
      if (value !== undefined && value !== null && typeof value !== "string") throw invalid(`ExtenderArgs.Pod.${part}.${field} must be a string`);
    }
  }
  const { annotations } = pod.metadata;
  if (annotations === undefined || annotations === null) return;
  if (!isObject(annotations) || !Object.values(annotations).every((value) => typeof value === "string")) throw invalid("ExtenderArgs.Pod.metadata.annotations must map names to strings");
}

export function parseExtenderArgs(body: unknown): ParsedArgs {
  if (!isObject(body)) throw invalid("ExtenderArgs must be a JSON object");
  const pod = body.Pod;
  if (!isObject(pod) || !isObject(pod.metadata) || !isObject(pod.spec)) throw invalid("ExtenderArgs.Pod must be a pod object with metadata and spec");
  checkPodFields({ metadata: pod.metadata, spec: pod.spec });
  const names = body.NodeNames;
  if (names !== undefined && names !== null) {
    if (!Array.isArray(names) || !names.every((name) => typeof name === "string")) throw invalid("ExtenderArgs.NodeNames must be a list of strings");
    return { pod: pod as PodObject, nodeNames: names as string[] };
  }
  if (body.Nodes === undefined || body.Nodes === null) throw invalid("ExtenderArgs needs NodeNames or Nodes");
  if (!isObject(body.Nodes)) throw invalid("ExtenderArgs.Nodes must be a NodeList object");
  const items = body.Nodes.items ?? [];
  if (!Array.isArray(items)) throw invalid("ExtenderArgs.Nodes.items must be a list");
  const nodeNames = items.map((item: unknown, i) => {
    const name = isObject(item) && isObject(item.metadata) ? item.metadata.name : undefined;
    if (typeof name !== "string" || !name) throw invalid(`ExtenderArgs.Nodes.items[${i}] has no metadata.name`);
    return name;
  });
  return { pod: pod as PodObject, nodeNames, nodes: items as NodeObject[] };
}

/** ExtenderFilterResult in the same form the request came in (NodeNames or Nodes). */
export function filterResult(args: ParsedArgs, outcome: FilterOutcome): string {
  let nodes: { items: NodeObject[] } | null = null;
  if (args.nodes) {
    const passed = new Set(outcome.passed);
    nodes = { items: args.nodes.filter((node) => passed.has(node.metadata!.name!)) };
  }
  return JSON.stringify({
    Nodes: nodes,
    NodeNames: args.nodes ? null : outcome.passed,
    FailedNodes: outcome.failed,
    FailedAndUnresolvableNodes: outcome.unresolvable,
    Error: "",
  });
}

export const priorityResult = (priorities: HostPriority[]): string => JSON.stringify(priorities);
