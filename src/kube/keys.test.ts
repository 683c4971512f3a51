import assert from "node:assert/strict";
import { objectKey } from "./keys.js";

describe("objectKey", () => {
  it("keys an object by namespace/name", () => {
    assert.equal(objectKey({ namespace: "team", name: "web-0" }), "team/web-0");
  });

  it("keys a cluster-scoped object (or a missing part) by what it has", () => {
    assert.equal(objectKey({ name: "node-1" }), "/node-1");
    assert.equal(objectKey({ namespace: "team", name: null }), "team/");
    assert.equal(objectKey(undefined), "/");
  });
});
