import assert from "node:assert/strict";
import { podUserData } from "./user-data.js";

describe("podUserData", () => {
  it("names the pod and carries the first container's command and args", () => {
    const pod = {
      metadata: { namespace: "team", name: "web" },
      spec: { containers: [{ name: "a", image: "busybox", command: ["sh", "-c"], args: ["echo hi"] }, { name: "b", image: "x", command: ["nope"] }] },
    };
    assert.deepEqual(JSON.parse(podUserData(pod, "c1", "u1")), { cluster: "c1", namespace: "team", pod: "web", podUID: "u1", command: ["sh", "-c", "echo hi"] });
  });

  it("has no command when the first container relies on its image's entrypoint", () => {
    const pod = { metadata: { namespace: "team", name: "web" }, spec: { containers: [{ name: "a", image: "nginx" }] } };
    assert.deepEqual(JSON.parse(podUserData(pod, "c1", "u1")), { cluster: "c1", namespace: "team", pod: "web", podUID: "u1" });
  });
});
