import assert from "node:assert/strict";
import { TAG, taggedPod } from "./types.js";

describe("taggedPod", () => {
  it("names the pod a VM's tags name", () => {
    assert.equal(taggedPod({ [TAG.namespace]: "team", [TAG.podName]: "web-0", [TAG.podUid]: "u1" }), "team/web-0");
  });

  it("names none when a tag is missing (a warm-pool VM, or one made without the pod's name)", () => {
    assert.equal(taggedPod({ [TAG.pool]: "true" }), undefined);
    assert.equal(taggedPod({ [TAG.namespace]: "team" }), undefined);
  });
});
