import type { IncomingMessage } from "node:http";
import { readJsonBody } from "../http/body.js";
import { HttpError } from "../http/errors.js";
import type { FastRoute } from "../http/server.js";
import type { Logger } from "../log/logger.js";
import { admissionDuration, admissionRequests } from "../metrics/admission.js";
import type { PolicyStore } from "../policy/store.js";
import { admit } from "./admit.js";
import { parseAdmissionReview, reviewResponse } from "./review.js";

export interface WebhookRouteOptions {
  policy: PolicyStore;
  log: Logger;
  maxBodyBytes: number;
}

/** `POST /mutate`: AdmissionReview in, AdmissionReview out; every outcome is counted and timed. */
export function mutateRoute({ policy, log, maxBodyBytes }: WebhookRouteOptions): FastRoute {
  return async (req: IncomingMessage) => {
    const stopTimer = admissionDuration.startTimer();
    try {
      const request = parseAdmissionReview(await readJsonBody(req, maxBodyBytes));
      const { response, result } = admit(request, policy.current, log);
      admissionRequests.inc({ result });
      return reviewResponse(response);
    } catch (error) {
      admissionRequests.inc({ result: error instanceof HttpError ? "invalid" : "error" });
      throw error;
    } finally {
      stopTimer();
    }
  };
}
