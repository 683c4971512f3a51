import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import { parseJson, readJsonText } from "../http/body.js";
import { HttpError } from "../http/errors.js";
import type { FastRoute } from "../http/server.js";
import type { Logger } from "../log/logger.js";
import { podKey } from "../kube/pod.js";
import { extenderDuration, extenderPhaseTotals, extenderRequests, type ExtenderResult, type ExtenderVerb } from "../metrics/scheduling.js";
import { classifyPod, filterNodes, scoreNodes, type FilterOutcome, type HostPriority, type PodClass } from "./decide.js";
import type { SchedulingState } from "./state.js";
import { errorBody, filterResult, parseExtenderArgs, priorityResult, type ParsedArgs } from "./wire.js";

export interface ExtenderRouteOptions {
  state: SchedulingState;
  log: Logger;
  maxBodyBytes: number;
  /** Called when a peer pod fits nowhere and some node failed for counts (slots, limits). */
  onTurnedAway?: () => void;
  /** Why the cloud cannot take VMs right now, or undefined while it is healthy. */
  providerProblem?: () => string | undefined;
  /** Milliseconds for the request and phase timings; performance.now unless a test steps it. */
  clock?: () => number;
}

/** One verb: the decision over the parsed request, then its answer's text. */
interface Verb<T> {
  decide(args: ParsedArgs, pod: PodClass): { answer: T; result: ExtenderResult };
  serialise(args: ParsedArgs, answer: T): string;
}

/** Times and counts one verb; every error leaves as an HttpError whose body carries `Error` for the scheduler. */
function route<T>(verb: ExtenderVerb, maxBodyBytes: number, handler: Verb<T>, state: SchedulingState, clock: () => number): FastRoute {
  const timer = extenderDuration.labels(verb);
  const totals = extenderPhaseTotals(verb);
  return async (req: IncomingMessage) => {
    const start = clock();
    try {
      const text = await readJsonText(req, maxBodyBytes);
      const parsing = clock();
      const args = parseExtenderArgs(parseJson(text));
      const deciding = clock();
      const { answer, result } = handler.decide(args, classifyPod(args.pod, state.policy));
      const serialising = clock();
      const body = handler.serialise(args, answer);
      const end = clock();
      totals.parse += deciding - parsing;
      totals.decide += serialising - deciding;
      totals.serialise += end - serialising;
      extenderRequests.inc({ verb, result });
      return body;
    } catch (error) {
      const message = (error as Error).message;
      extenderRequests.inc({ verb, result: error instanceof HttpError ? "invalid" : "error" });
      if (error instanceof HttpError) throw error.body ? error : new HttpError(error.status, message, errorBody(message));
      throw new HttpError(500, message, errorBody(`peerpods extender: ${message}`));
    } finally {
      timer.observe((clock() - start) / 1000);
    }
  };
}

/** `POST /filter` and `POST /prioritize` over the informer-fed state: no apiserver call on the request path. */
export function extenderRoutes({ state, log, maxBodyBytes, onTurnedAway, providerProblem, clock = () => performance.now() }: ExtenderRouteOptions): Record<string, FastRoute> {
  const filter: Verb<FilterOutcome> = {
    decide: (args, pod) => {
      if (pod.kind === "plain") return { answer: { passed: args.nodeNames, failed: {}, unresolvable: {} }, result: "skipped" };
      const outcome = filterNodes(pod, args.nodeNames, state, providerProblem?.());
      const fits = outcome.passed.length > 0;
      if (fits && pod.kind === "peer") state.reserve(pod.uid, pod.instanceType.vcpus);
      const key = podKey(args.pod.metadata?.namespace, args.pod.metadata);
      if (!fits) {
        log.info({ pod: key, failed: outcome.failed, unresolvable: outcome.unresolvable }, "no node fits the peer pod");
        if (Object.keys(outcome.failed).length > 0) onTurnedAway?.();
      } else if (log.isLevelEnabled("debug")) log.debug({ pod: key, nodes: outcome.passed }, "peer pod filtered");
      return { answer: outcome, result: fits ? "ok" : "nofit" };
    },
    serialise: filterResult,
  };
  const prioritize: Verb<HostPriority[]> = {
    decide: (args, pod) => ({ answer: scoreNodes(pod, args.nodeNames, state), result: pod.kind === "peer" ? "ok" : "skipped" }),
    serialise: (_, priorities) => priorityResult(priorities),
  };
  return {
    "/filter": route("filter", maxBodyBytes, filter, state, clock),
    "/prioritize": route("prioritize", maxBodyBytes, prioritize, state, clock),
  };
}
