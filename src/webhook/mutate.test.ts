import assert from "node:assert/strict";
import fastJsonPatch from "fast-json-patch";
import { ANNOTATION, VM_READY_CONDITION } from "../kube/annotations.js";
import type { Container, Pod } from "../kube/pod.js";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema, type PolicySpec } from "../policy/schema.js";
import { mutatePod, type MutationResult } from "./mutate.js";

const policyOf = (spec: Partial<PolicySpec> = {}) => compilePolicy(policySpecSchema.parse(spec), 1);
const basePolicy = policyOf({
  instanceTypes: [
    { name: "small", vcpus: 1, memoryMiB: 1024, gpus: 0, hourlyCost: 0.01 },
    { name: "medium", vcpus: 2, memoryMiB: 4096, gpus: 0, hourlyCost: 0.02 },
    { name: "large", vcpus: 8, memoryMiB: 16384, gpus: 0, hourlyCost: 0.08 },
    { name: "gpu", vcpus: 4, memoryMiB: 8192, gpus: 1, hourlyCost: 0.5 },
    { name: "cheap-big", vcpus: 16, memoryMiB: 32768, gpus: 0 },
  ],
  defaultInstanceType: "medium",
});

function pod(containers: Partial<Container>[], extra: { init?: Partial<Container>[]; annotations?: Record<string, string>; runtimeClassName?: string | null } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "team", ...(extra.annotations && { annotations: extra.annotations }) },
    spec: {
      runtimeClassName: extra.runtimeClassName === undefined ? "kata-remote" : extra.runtimeClassName,
      containers: containers.map((c, i) => ({ name: `c${i}`, image: "busybox", ...c })),
      ...(extra.init ? { initContainers: extra.init.map((c, i) => ({ name: `i${i}`, image: "busybox", ...c })) } : {}),
      overhead: { cpu: "250m", memory: "160Mi" },
    },
  };
}

function apply(p: Pod, result: MutationResult): Pod {
  assert.equal(result.kind, "patch", JSON.stringify(result));
  if (result.kind !== "patch") throw new Error("unreachable");
  return fastJsonPatch.applyPatch(structuredClone(p), result.patch, true, false).newDocument;
}

const res = (requests?: Record<string, string>, limits?: Record<string, string>) => ({ resources: { ...(requests && { requests }), ...(limits && { limits }) } });

describe("mutatePod", () => {
  const chooses: [string, Pod, string][] = [
    ["a pod with no requests gets the default type", pod([{}]), "medium"],
    ["the cheapest type that fits", pod([res({ cpu: "500m", memory: "512Mi" })]), "small"],
    ["sums containers", pod([res({ cpu: "1" }), res({ cpu: "1" })]), "medium"],
    ["an init container larger than the app containers", pod([res({ cpu: "100m" })], { init: [res({ cpu: "6" })] }), "large"],
    ["limits stand in for missing requests", pod([res(undefined, { memory: "3Gi" })]), "medium"],
    ["GPUs select a GPU type", pod([res({ cpu: "1" }, { "nvidia.com/gpu": "1" })]), "gpu"],
    ["types without a cost come after priced ones", pod([res({ cpu: "12" })]), "cheap-big"],
  ];
  for (const [name, input, type] of chooses) {
    it(name, () => {
      const result = mutatePod(input, "team", basePolicy);
      assert.equal(result.kind, "patch");
      assert.equal(result.kind === "patch" && result.instanceType.name, type);
    });
  }

  it("rewrites resources, annotations and readiness gate exactly", () => {
    const input = pod([res({ cpu: "1500m", memory: "1Gi", "example.com/foo": "2" }, { cpu: "2", memory: "1Gi" }), res({ memory: "100Mi" })], {
      init: [res({ cpu: "100m" })],
      annotations: { keep: "me" },
    });
    const out = apply(input, mutatePod(input, "team", basePolicy));
    assert.deepEqual(out.spec.containers[0]!.resources, {
      requests: { "example.com/foo": "2", "kata.peerpods.io/vm": "1" },
      limits: { "kata.peerpods.io/vm": "1" },
    });
    assert.deepEqual(out.spec.containers[1]!.resources, {});
    assert.deepEqual(out.spec.initContainers![0]!.resources, {});
    assert.deepEqual(out.spec.readinessGates, [{ conditionType: VM_READY_CONDITION }]);
    assert.deepEqual(out.spec.overhead, { cpu: "250m", memory: "160Mi" });
    const a = out.metadata!.annotations!;
    assert.equal(a.keep, "me");
    assert.equal(a[ANNOTATION.instanceType], "medium");
    assert.equal(a[ANNOTATION.kataMachineType], "medium");
    assert.equal(a[ANNOTATION.kataVcpus], "2");
    assert.equal(a[ANNOTATION.kataMemory], "4096");
    assert.deepEqual(JSON.parse(a[ANNOTATION.originalResources]!), {
      containers: { c0: { requests: { cpu: "1500m", memory: "1Gi" }, limits: { cpu: "2", memory: "1Gi" } }, c1: { requests: { memory: "100Mi" } } },
      initContainers: { i0: { requests: { cpu: "100m" } } },
    });
  });

  const idempotent: [string, Pod][] = [
    ["plain requests", pod([res({ cpu: "1", memory: "1Gi" }), res({ memory: "2Gi" })])],
    ["init containers and sidecars", pod([res({ cpu: "1" })], { init: [{ ...res({ cpu: "500m" }), restartPolicy: "Always" }, res({ cpu: "3" })] })],
    ["no resources at all", pod([{}])],
    ["GPU", pod([res(undefined, { "nvidia.com/gpu": "1" })])],
    ["forced type", pod([res({ cpu: "1" })], { annotations: { [ANNOTATION.kataMachineType]: "large" } })],
  ];
  for (const [name, input] of idempotent) {
    it(`is idempotent: ${name}`, () => {
      const once = apply(input, mutatePod(input, "team", basePolicy));
      const again = mutatePod(once, "team", basePolicy);
      assert.equal(again.kind, "patch");
      assert.deepEqual(again.kind === "patch" && again.patch, []);
    });
  }

  it("skips pods of other runtime classes and pods with none", () => {
    assert.equal(mutatePod(pod([{}], { runtimeClassName: "runc" }), "team", basePolicy).kind, "skip");
    assert.equal(mutatePod(pod([{}], { runtimeClassName: null }), "team", basePolicy).kind, "skip");
  });

  it("skips excluded namespaces", () => {
    assert.equal(mutatePod(pod([{}]), "kube-system", basePolicy).kind, "skip");
  });

  it("honours an allowed machine_type annotation", () => {
    const result = mutatePod(pod([res({ cpu: "1" })], { annotations: { [ANNOTATION.kataMachineType]: "large" } }), "team", basePolicy);
    assert.equal(result.kind === "patch" && result.instanceType.name, "large");
    assert.equal(result.kind === "patch" && result.forced, true);
  });

  it("denies an annotation naming a type the namespace may not use, listing the allowed ones", () => {
    const policy = policyOf({ ...basePolicy.spec, allowedInstanceTypes: { team: ["small", "medium"] } });
    const result = mutatePod(pod([{}], { annotations: { [ANNOTATION.kataMachineType]: "large" } }), "team", policy);
    assert.equal(result.kind, "deny");
    assert.match(result.kind === "deny" ? result.message : "", /"large" is not allowed in namespace "team"; allowed types: medium, small/);
  });

  it("denies an unknown type by annotation", () => {
    const result = mutatePod(pod([{}], { annotations: { [ANNOTATION.kataMachineType]: "x9.mega" } }), "team", basePolicy);
    assert.match(result.kind === "deny" ? result.message : "", /"x9.mega" is not allowed/);
  });

  it("denies any forcing when the policy disallows the annotation", () => {
    const policy = policyOf({ ...basePolicy.spec, allowInstanceTypeAnnotation: false });
    const result = mutatePod(pod([{}], { annotations: { [ANNOTATION.kataMachineType]: "large" } }), "team", policy);
    assert.match(result.kind === "deny" ? result.message : "", /does not allow choosing an instance type by annotation/);
    const sameAsAuto = mutatePod(pod([{}], { annotations: { [ANNOTATION.kataMachineType]: "medium" } }), "team", policy);
    assert.equal(sameAsAuto.kind, "patch");
  });

  it("denies a forced type smaller than the envelope", () => {
    const result = mutatePod(pod([res({ cpu: "4" })], { annotations: { [ANNOTATION.kataMachineType]: "small" } }), "team", basePolicy);
    assert.match(result.kind === "deny" ? result.message : "", /smaller than the pod's envelope/);
  });

  it("denies a pod no type can hold, naming the envelope and the largest type", () => {
    const result = mutatePod(pod([res({ cpu: "64" })]), "team", basePolicy);
    assert.match(result.kind === "deny" ? result.message : "", /64000m CPU \(64 vCPU\).*largest is cheap-big \(16 vCPU, 32768 MiB\)/);
  });

  it("denies invalid quantities with the value", () => {
    const result = mutatePod(pod([res({ cpu: "-1" })]), "team", basePolicy);
    assert.match(result.kind === "deny" ? result.message : "", /invalid resource quantity: "-1" is negative/);
  });

  it("requests exactly one VM unit even when the user set the resource", () => {
    const input = pod([res({ "kata.peerpods.io/vm": "2" }), res({ "kata.peerpods.io/vm": "3" }, { "kata.peerpods.io/vm": "3" })]);
    const out = apply(input, mutatePod(input, "team", basePolicy));
    assert.equal(out.spec.containers[0]!.resources!.requests!["kata.peerpods.io/vm"], "1");
    assert.equal(out.spec.containers[0]!.resources!.limits!["kata.peerpods.io/vm"], "1");
    assert.deepEqual(out.spec.containers[1]!.resources, {});
  });

  it("denies a malformed original-resources annotation", () => {
    const result = mutatePod(pod([{}], { annotations: { [ANNOTATION.originalResources]: "{" } }), "team", basePolicy);
    assert.match(result.kind === "deny" ? result.message : "", /reserved for peerpods/);
  });

  it("omits the readiness gate when the policy turns it off", () => {
    const policy = policyOf({ ...basePolicy.spec, readinessGate: false });
    const input = pod([{}]);
    assert.equal(apply(input, mutatePod(input, "team", policy)).spec.readinessGates, undefined);
  });

  it("uses the policy's extended resource name", () => {
    const policy = policyOf({ ...basePolicy.spec, extendedResourceName: "example.com/vm" });
    const input = pod([{}]);
    assert.deepEqual(apply(input, mutatePod(input, "team", policy)).spec.containers[0]!.resources!.requests, { "example.com/vm": "1" });
  });
});
