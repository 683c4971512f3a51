import { ProviderError, type ProviderErrorKind } from "../types.js";

const QUOTA_CODES = new Set([
  "InstanceLimitExceeded",
  "VcpuLimitExceeded",
  "InsufficientInstanceCapacity",
  "InsufficientCapacity",
  "InsufficientFreeAddressesInSubnet",
  "MaxSpotInstanceCountExceeded",
]);

/** Quota codes that concern one zone only: another subnet in another zone may still work. */
export const ZONE_CAPACITY_CODES = new Set(["InsufficientInstanceCapacity", "InsufficientFreeAddressesInSubnet", "Unsupported"]);

const RETRYABLE_CODES = new Set([
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "RequestThrottled",
  "EC2ThrottledException",
  "InternalError",
  "InternalFailure",
  "ServiceUnavailable",
  "Unavailable",
  "RequestTimeout",
  "RequestExpired",
  "TimeoutError",
  "AbortError",
  "IdempotentInstanceTerminated",
]);

const NOT_FOUND_CODES = new Set(["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $fault?: "client" | "server";
  $metadata?: { httpStatusCode?: number };
}

/** The EC2 error code of an SDK error (`name`), or the Node.js network error code. */
export function errorCode(error: unknown): string {
  const e = (error ?? {}) as SdkErrorShape;
  return e.code !== undefined && e.name === "Error" ? e.code : (e.name ?? e.code ?? "Unknown");
}

export function classify(error: unknown): ProviderErrorKind {
  const e = (error ?? {}) as SdkErrorShape;
  const code = errorCode(error);
  if (QUOTA_CODES.has(code)) return "quota";
  if (NOT_FOUND_CODES.has(code)) return "notFound";
  if (RETRYABLE_CODES.has(code)) return "retryable";
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return "retryable";
  if (e.$fault === "server") return "retryable";
  // Anything that never got an HTTP answer (connection refused, reset, DNS) may work next time.
  if (status === undefined) return "retryable";
  return "invalid";
}

/** Maps an SDK error to the provider-neutral kinds, keeping EC2's code and message for Events. */
export function toProviderError(error: unknown, action: string): ProviderError {
  if (error instanceof ProviderError) return error;
  const message = (error as SdkErrorShape | undefined)?.message ?? String(error);
  return new ProviderError(classify(error), `${action}: ${errorCode(error)}: ${message}`, { cause: error });
}
