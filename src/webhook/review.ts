import { HttpError } from "../http/errors.js";
import type { Pod } from "../kube/pod.js";

/** The fields of an admission.k8s.io/v1 AdmissionRequest that the webhook uses. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  object?: Pod;
  oldObject?: Pod;
  dryRun?: boolean;
  userInfo?: { username?: string };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patch?: string;
  patchType?: "JSONPatch";
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
}

const OPERATIONS = new Set(["CREATE", "UPDATE", "DELETE", "CONNECT"]);

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

const show = (value: unknown, max = 60): string => String(JSON.stringify(value)).slice(0, max);

/** Checks the envelope of an AdmissionReview and returns its request; anything malformed is a 400. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isRecord(body)) throw new HttpError(400, "body must be a JSON object (an AdmissionReview)");
  if (body.apiVersion !== "admission.k8s.io/v1") throw new HttpError(400, `apiVersion must be admission.k8s.io/v1, got ${show(body.apiVersion)}`);
  if (body.kind !== "AdmissionReview") throw new HttpError(400, `kind must be AdmissionReview, got ${show(body.kind)}`);
  const request = body.request;
  if (!isRecord(request)) throw new HttpError(400, "AdmissionReview has no request");
  checkRequest(request);
  return request as unknown as AdmissionRequest;
}

/** Fields the webhook reads as names (and logs); any other type is a 400, not a crash where a string is built. */
function checkNames(where: string, record: Record<string, unknown>, fields: readonly string[]): void {
  for (const field of fields) {
    if (record[field] !== undefined && typeof record[field] !== "string") throw new HttpError(400, `${where}.${field} must be a string, got ${show(record[field])}`);
  }
}

function checkRequest(request: Record<string, unknown>): void {
  if (typeof request.uid !== "string" || request.uid.length === 0) throw new HttpError(400, "request.uid is missing");
  checkNames("request", request, ["name", "namespace"]);
  if (typeof request.operation !== "string" || !OPERATIONS.has(request.operation)) throw new HttpError(400, "request.operation is missing or unknown");
  const kind = request.kind;
  if (!isRecord(kind) || kind.group !== "" || kind.version !== "v1" || kind.kind !== "Pod") {
    throw new HttpError(400, `this webhook admits core/v1 Pods only, got ${show(kind, 80)}`);
  }
  if (request.operation !== "CREATE") return;
  const object = request.object;
  if (!isRecord(object) || !isRecord(object.spec) || !Array.isArray(object.spec.containers)) {
    throw new HttpError(400, "request.object must be a Pod with spec.containers");
  }
  if (object.metadata === undefined) return;
  if (!isRecord(object.metadata)) throw new HttpError(400, "request.object.metadata must be an object");
  checkNames("request.object.metadata", object.metadata, ["name", "namespace", "generateName"]);
}

/** Serialises the AdmissionReview response around `response`. */
export function reviewResponse(response: AdmissionResponse): string {
  return JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response });
}
