import assert from "node:assert/strict";
import { ProviderError } from "../types.js";
import { classify, toProviderError } from "./errors.js";

const sdkError = (name: string, status?: number, fault?: "client" | "server"): Error =>
  Object.assign(new Error(`${name}!`), { name, ...(status !== undefined && { $metadata: { httpStatusCode: status } }), ...(fault && { $fault: fault }) });

describe("aws error classification", () => {
  const cases: [Error, ProviderError["kind"]][] = [
    [sdkError("RequestLimitExceeded", 503, "client"), "retryable"],
    [sdkError("Throttling", 400, "client"), "retryable"],
    [sdkError("InternalError", 500, "server"), "retryable"],
    [sdkError("SomethingNew", 502), "retryable"],
    [Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }), "retryable"],
    [sdkError("InstanceLimitExceeded", 400, "client"), "quota"],
    [sdkError("VcpuLimitExceeded", 400, "client"), "quota"],
    [sdkError("InsufficientInstanceCapacity", 500, "server"), "quota"],
    [sdkError("InvalidInstanceID.NotFound", 400, "client"), "notFound"],
    [sdkError("InvalidParameterValue", 400, "client"), "invalid"],
    [sdkError("InvalidAMIID.NotFound", 400, "client"), "invalid"],
    [sdkError("UnauthorizedOperation", 403, "client"), "invalid"],
  ];
  for (const [error, kind] of cases) {
    it(`${error.name} (${(error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? "no answer"}) → ${kind}`, () => {
      assert.equal(classify(error), kind);
    });
  }

  it("keeps the action, EC2's code and message, and the cause", () => {
    const cause = sdkError("InvalidParameterValue", 400, "client");
    const mapped = toProviderError(cause, "RunInstances");
    assert.equal(mapped.message, "RunInstances: InvalidParameterValue: InvalidParameterValue!");
    assert.equal(mapped.cause, cause);
  });

  it("passes a ProviderError through unchanged", () => {
    const error = new ProviderError("quota", "already mapped");
    assert.equal(toProviderError(error, "RunInstances"), error);
  });
});
