import type { IncomingMessage } from "node:http";
import { readJsonBody } from "../http/body.js";
import { HttpError } from "../http/errors.js";
import type { FastRoute } from "../http/server.js";
import type { Logger } from "../log/logger.js";
import { podKey } from "../kube/pod.js";
import { extenderDuration, extenderRequests, type ExtenderResult, type ExtenderVerb } from "../metrics/scheduling.js";
import { classifyPod, filterNodes, scoreNodes, type PodClass } from "./decide.js";
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
}

type Handler = (args: ParsedArgs, pod: PodClass) => { body: string; result: ExtenderResult };

/** Times and counts one verb; every error leaves as an HttpError whose body carries `Error` for the scheduler. */
function route(verb: ExtenderVerb, maxBodyBytes: number, handle: Handler, state: SchedulingState): FastRoute {
  const timer = extenderDuration.labels(verb);
  return async (req: IncomingMessage) => {
    const stop = timer.startTimer();
    try {
      const args = parseExtenderArgs(await readJsonBody(req, maxBodyBytes));
      const { body, result } = handle(args, classifyPod(args.pod, state.policy));
      extenderRequests.inc({ verb, result });
      return body;
    } catch (error) {
      const message = (error as Error).message;
      extenderRequests.inc({ verb, result: error instanceof HttpError ? "invalid" : "error" });
      if (error instanceof HttpError) throw error.body ? error : new HttpError(error.status, message, errorBody(message));
      throw new HttpError(500, message, errorBody(`peerpods extender: ${message}`));
    } finally {
      stop();
    }
  };
}

/** `POST /filter` and `POST /prioritize` over the informer-fed state: no apiserver call on the request path. */
export function extenderRoutes({ state, log, maxBodyBytes, onTurnedAway, providerProblem }: ExtenderRouteOptions): Record<string, FastRoute> {
  const filter: Handler = (args, pod) => {
    if (pod.kind === "plain") return { body: filterResult(args, { passed: args.nodeNames, failed: {}, unresolvable: {} }), result: "skipped" };
    const outcome = filterNodes(pod, args.nodeNames, state, providerProblem?.());
    const fits = outcome.passed.length > 0;
    if (fits && pod.kind === "peer") state.reserve(pod.uid, pod.instanceType.vcpus);
    const key = podKey(args.pod.metadata?.namespace, args.pod.metadata);
    if (!fits) {
      log.info({ pod: key, failed: outcome.failed, unresolvable: outcome.unresolvable }, "no node fits the peer pod");
      if (Object.keys(outcome.failed).length > 0) onTurnedAway?.();
    } else if (log.isLevelEnabled("debug")) log.debug({ pod: key, nodes: outcome.passed }, "peer pod filtered");
    return { body: filterResult(args, outcome), result: fits ? "ok" : "nofit" };
  };
  const prioritize: Handler = (args, pod) => ({
    body: priorityResult(scoreNodes(pod, args.nodeNames, state)),
    result: pod.kind === "peer" ? "ok" : "skipped",
  });
  return {
    "/filter": route("filter", maxBodyBytes, filter, state),
    "/prioritize": route("prioritize", maxBodyBytes, prioritize, state),
  };
}
