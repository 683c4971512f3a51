import { ApiException } from "@kubernetes/client-node";

/** The HTTP status of a failed Kubernetes API call, or undefined for other errors (network, timeouts). */
export function apiStatus(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}
