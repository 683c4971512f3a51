import assert from "node:assert/strict";
import { ApiException } from "@kubernetes/client-node";
import { apiStatus } from "./errors.js";

describe("apiStatus", () => {
  it("reads the HTTP status of a failed Kubernetes API call", () => {
    assert.equal(apiStatus(new ApiException(404, "not found", "", {})), 404);
    assert.equal(apiStatus(new ApiException(409, "conflict", "", {})), 409);
  });

  it("has none for errors that never reached the apiserver, even ones with a code", () => {
    assert.equal(apiStatus(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })), undefined);
    assert.equal(apiStatus(Object.assign(new Error("looks like a status"), { code: 404 })), undefined);
    assert.equal(apiStatus(undefined), undefined);
  });
});
