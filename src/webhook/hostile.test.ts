import assert from "node:assert/strict";
import fastJsonPatch from "fast-json-patch";
import { ANNOTATION } from "../kube/annotations.js";
import type { Container, Pod } from "../kube/pod.js";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema } from "../policy/schema.js";
import { mutatePod } from "./mutate.js";

/** Pods written to break the webhook: each has one defined answer (a type, or a denial that says why). */
const policy = compilePolicy(
  policySpecSchema.parse({
    instanceTypes: [
      { name: "small", vcpus: 1, memoryMiB: 1024, hourlyCost: 0.01 },
      { name: "medium", vcpus: 2, memoryMiB: 4096, hourlyCost: 0.02 },
      { name: "huge", vcpus: 64, memoryMiB: 262144, hourlyCost: 1 },
    ],
    defaultInstanceType: "small",
    allowedInstanceTypes: { team: ["small", "medium", "huge"], restricted: ["small"] },
  }),
  1,
);
const VM = "kata.peerpods.io/vm";

type Resources = Record<string, unknown>;
const container = (name: string, requests?: Resources, limits?: Resources): Container =>
  ({ name, image: "busybox", resources: { ...(requests && { requests }), ...(limits && { limits }) } }) as Container;

function pod(containers: Container[], extra: { name?: string; annotations?: Record<string, string>; overhead?: Resources } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: extra.name ?? "p", namespace: "team", ...(extra.annotations && { annotations: extra.annotations }) },
    spec: { runtimeClassName: "kata-remote", containers, ...(extra.overhead && { overhead: extra.overhead }) } as Pod["spec"],
  };
}

/** Mutates and applies the patch, asserting the invariants every admitted pod keeps; returns the result and the chosen type. */
function admitted(input: Pod, namespace = "team"): { out: Pod; type: string } {
  const result = mutatePod(input, namespace, policy);
  assert.equal(result.kind, "patch", JSON.stringify(result).slice(0, 300));
  if (result.kind !== "patch") throw new Error("unreachable");
  const out = fastJsonPatch.applyPatch(structuredClone(input), result.patch, true, false).newDocument;
  const units = out.spec.containers.map((c) => [c.resources?.requests?.[VM], c.resources?.limits?.[VM]]);
  assert.deepEqual(units[0], ["1", "1"], "exactly one VM unit, on the first container");
  assert.ok(
    units.slice(1).every(([request, limit]) => request === undefined && limit === undefined),
    "no other container asks for a unit",
  );
  const again = mutatePod(out, namespace, policy);
  assert.deepEqual(again.kind === "patch" ? again.patch : again, [], "idempotent: a second pass changes nothing");
  return { out, type: result.instanceType.name };
}

function denied(input: Pod, namespace = "team"): string {
  const result = mutatePod(input, namespace, policy);
  assert.equal(result.kind, "deny", JSON.stringify(result).slice(0, 300));
  return result.kind === "deny" ? result.message : "";
}

describe("hostile pods: each gets a defined answer", () => {
  describe("instance type annotations", () => {
    const forcing = (value: string) => pod([container("app")], { annotations: { [ANNOTATION.kataMachineType]: value } });

    it("a type the namespace may not use: denied, naming the allowed ones", () => {
      assert.match(denied(forcing("huge"), "restricted"), /instance type "huge" is not allowed in namespace "restricted"; allowed types: small/);
    });
    it("a type no catalog has: denied", () => {
      assert.match(denied(forcing("m9.nonexistent")), /"m9\.nonexistent" is not allowed/);
    });
    it("an empty value: denied rather than read as unset", () => {
      assert.match(denied(forcing("")), /instance type "" is not allowed/);
    });
    it("a 100 KB value: denied with the value cut short in the message", () => {
      const message = denied(forcing("x".repeat(100_000)));
      assert.ok(message.length < 400, `message of ${message.length} characters`);
      assert.match(message, /x…" is not allowed/);
    });
  });

  describe("quantities", () => {
    const deniedQuantities: [string, Resources, RegExp][] = [
      ["a CPU of 1e30", { cpu: "1e30" }, /"1e30" is too large/],
      ["a CPU beyond a double (1e400)", { cpu: "1e400" }, /"1e400" is too large/],
      ["999 exbibytes of memory", { memory: "999Ei" }, /"999Ei" is too large/],
      ["a negative memory", { memory: "-1Gi" }, /"-1Gi" is negative/],
      ["a negative CPU", { cpu: "-500m" }, /"-500m" is negative/],
      ["a word", { cpu: "lots" }, /"lots" is not a valid quantity/],
    ];
    for (const [name, requests, message] of deniedQuantities) {
      it(`${name}: denied with the value`, () => assert.match(denied(pod([container("app", requests)])), message));
    }

    const fractional: [string, Resources, string][] = [
      ["half a CPU written 0.5", { cpu: "0.5" }, "small"],
      ["a tenth of a millicore (rounded up to 1m)", { cpu: "0.0001" }, "small"],
      ["1.5Gi of memory", { memory: "1.5Gi" }, "medium"],
      ["half a byte", { memory: "0.5" }, "small"],
    ];
    for (const [name, requests, type] of fractional) {
      it(`${name}: admitted as ${type}, the original value kept in the annotation`, () => {
        const { out, type: chosen } = admitted(pod([container("app", requests)]));
        assert.equal(chosen, type);
        assert.deepEqual(JSON.parse(out.metadata!.annotations![ANNOTATION.originalResources]!).containers.app.requests, requests);
      });
    }

    it("1.5 CPU as a limit only: the limit stands in for the request and picks medium", () => {
      assert.equal(admitted(pod([container("app", undefined, { cpu: "1500m" })])).type, "medium");
    });
  });

  it("3,000 containers: admitted with one VM unit, every container's resources kept in the annotation", () => {
    const many = Array.from({ length: 3000 }, (_, i) => container(`c${i}`, { cpu: "10m", memory: "10Mi" }));
    const { out, type } = admitted(pod(many));
    assert.equal(type, "huge", "30 vCPU and 30000 MiB fit only the huge type");
    const kept = JSON.parse(out.metadata!.annotations![ANNOTATION.originalResources]!).containers as Record<string, unknown>;
    assert.equal(Object.keys(kept).length, 3000);
  });

  it("unicode in pod and container names: admitted, the names round-trip through the annotation", () => {
    const { out } = admitted(pod([container("контейнер-🚀", { cpu: "100m" }), container("名前", { memory: "64Mi" })], { name: "pöd-名前" }));
    const kept = JSON.parse(out.metadata!.annotations![ANNOTATION.originalResources]!).containers as Record<string, unknown>;
    assert.deepEqual(Object.keys(kept), ["контейнер-🚀", "名前"]);
  });

  describe(`a ${VM} request set by the user`, () => {
    for (const value of ["0", "2", "1000"]) {
      it(`of ${value} on every container: replaced by exactly one unit (never 0, never 2)`, () => {
        admitted(pod([container("a", { [VM]: value }, { [VM]: value }), container("b", { [VM]: value })]));
      });
    }
  });

  describe("spec.overhead (set by RuntimeClass admission, which also rejects a pod whose overhead differs from its RuntimeClass)", () => {
    const overheads: [string, Resources | undefined][] = [
      ["none", undefined],
      ["far larger than the pod", { cpu: "100", memory: "1Ti" }],
      ["not a quantity", { cpu: "x" }],
    ];
    for (const [name, overhead] of overheads) {
      it(`${name}: left as it is and not counted in the VM size`, () => {
        const input = pod([container("app", { cpu: "100m" })], overhead ? { overhead } : {});
        const { out, type } = admitted(input);
        assert.equal(type, "small");
        assert.deepEqual(out.spec.overhead, input.spec.overhead);
      });
    }
  });
});
