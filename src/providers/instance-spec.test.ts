import assert from "node:assert/strict";
import { compilePolicy } from "../policy/compiled.js";
import { defaultPolicy } from "../policy/schema.js";
import { instanceSpecFor, podCommand } from "./instance-spec.js";
import { TAG } from "./types.js";

const small = compilePolicy(defaultPolicy(), 1).instanceTypes.get("small")!;

describe("instanceSpecFor", () => {
  it("names the pod in the tags and the user data, with the first container's command and args", () => {
    const pod = {
      metadata: { namespace: "team", name: "web" },
      spec: { containers: [{ name: "a", image: "busybox", command: ["sh", "-c"], args: ["echo hi"] }, { name: "b", image: "x", command: ["nope"] }] },
    };
    const spec = instanceSpecFor("c1", "pp-u1", small, { podUID: "u1", namespace: "team", name: "web", command: podCommand(pod) });
    assert.equal(spec.name, "pp-u1");
    assert.equal(spec.instanceType, small);
    assert.deepEqual(JSON.parse(spec.userData), { cluster: "c1", namespace: "team", pod: "web", podUID: "u1", command: ["sh", "-c", "echo hi"] });
    assert.deepEqual(spec.tags, { [TAG.cluster]: "c1", [TAG.instanceType]: "small", [TAG.podUid]: "u1", [TAG.namespace]: "team", [TAG.podName]: "web" });
  });

  it("has no command when the first container relies on its image's entrypoint", () => {
    const pod = { spec: { containers: [{ name: "a", image: "nginx" }] } };
    assert.deepEqual(podCommand(pod), []);
    const spec = instanceSpecFor("c1", "pp-u1", small, { podUID: "u1", namespace: "team", name: "web", command: podCommand(pod) });
    assert.deepEqual(JSON.parse(spec.userData), { cluster: "c1", namespace: "team", pod: "web", podUID: "u1" });
  });

  it("tags only what is known of a pod the cluster could not name", () => {
    const spec = instanceSpecFor("c1", "pp-sandbox-s1", small, {});
    assert.deepEqual(spec.tags, { [TAG.cluster]: "c1", [TAG.instanceType]: "small" });
    assert.deepEqual(JSON.parse(spec.userData), { cluster: "c1" });
  });
});
