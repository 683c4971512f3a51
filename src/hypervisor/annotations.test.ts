import assert from "node:assert/strict";
import { describeTarget, parseSandboxAnnotations, SANDBOX_ANNOTATION as A } from "./annotations.js";

/** What the Kata shim's remote hypervisor sends: every key, empty or default values where nothing was configured. */
const shim = (overrides: Record<string, string>): Record<string, string> => ({
  [A.name]: "",
  [A.namespace]: "",
  [A.machineType]: "",
  [A.vcpus]: "1",
  [A.memory]: "2048",
  [A.volumeName]: "",
  ...overrides,
});

describe("sandbox annotations", () => {
  it("reads the containerd form: plain pod name and namespace", () => {
    const target = parseSandboxAnnotations(shim({ [A.name]: "web-0", [A.namespace]: "shop", [A.machineType]: "medium" }));
    assert.deepEqual(target, { name: "web-0", namespace: "shop", machineType: "medium", vcpus: 1, memoryMiB: 2048, ignored: [] });
    assert.equal(describeTarget(target), "shop/web-0");
  });

  it("reads the CRI-O form k8s_<pod>_<namespace>_<uid>_<attempt>, uid included", () => {
    const target = parseSandboxAnnotations(shim({ [A.name]: "k8s_web-0.v2_shop_0f1e2d3c-aaaa-bbbb-cccc-123456789abc_0", [A.namespace]: "shop" }));
    assert.equal(target.name, "web-0.v2");
    assert.equal(target.namespace, "shop");
    assert.equal(target.uid, "0f1e2d3c-aaaa-bbbb-cccc-123456789abc");
  });

  it("takes the namespace from the CRI-O name when the namespace annotation is missing, and a later attempt number", () => {
    const target = parseSandboxAnnotations({ [A.name]: "k8s_api_team-a_1234abcd_3" });
    assert.deepEqual([target.name, target.namespace, target.uid], ["api", "team-a", "1234abcd"]);
  });

  it("prefers an explicit sandbox-uid annotation", () => {
    assert.equal(parseSandboxAnnotations({ [A.name]: "p", [A.namespace]: "n", [A.uid]: "ABCDEF12-0000" }).uid, "abcdef12-0000");
  });

  it("treats empty values and Kata's 0 as absent", () => {
    const target = parseSandboxAnnotations(shim({ [A.vcpus]: "0", [A.memory]: "0" }));
    assert.deepEqual(target, { ignored: [] });
  });

  it("ignores (and names) values it cannot use instead of failing the call", () => {
    const target = parseSandboxAnnotations({
      [A.name]: "Not_A_Pod!",
      [A.namespace]: "../etc",
      [A.uid]: "x y",
      [A.vcpus]: "-2",
      [A.memory]: "lots",
    });
    assert.equal(target.name, undefined);
    assert.equal(target.namespace, undefined);
    assert.equal(target.uid, undefined);
    assert.equal(target.vcpus, undefined);
    assert.equal(target.memoryMiB, undefined);
    assert.equal(target.ignored.length, 5);
    assert.equal(describeTarget(target), "?/?");
  });

  it("refuses absurd sizes", () => {
    const target = parseSandboxAnnotations({ [A.vcpus]: "100000", [A.memory]: "99999999999" });
    assert.deepEqual([target.vcpus, target.memoryMiB, target.ignored.length], [undefined, undefined, 2]);
  });
});
