import assert from "node:assert/strict";
import { compilePolicy } from "./compiled.js";
import { defaultPolicy, parsePolicy } from "./schema.js";

describe("policy schema", () => {
  it("fills every default", () => {
    const spec = defaultPolicy();
    assert.deepEqual(spec.runtimeClassNames, ["kata-remote", "peerpods"]);
    assert.equal(spec.extendedResourceName, "kata.peerpods.io/vm");
    assert.deepEqual(spec.excludedNamespaces, ["kube-system"]);
    assert.equal(spec.nodes.vmsPerNode, 10);
    assert.equal(spec.scheduling.strategy, "Spread");
    assert.equal(spec.readinessGate, true);
    assert.equal(spec.provider.name, "qemu");
  });

  it("accepts a whole PeerPodPolicy object", () => {
    const result = parsePolicy({ apiVersion: "peerpods.io/v1alpha1", kind: "PeerPodPolicy", metadata: { name: "default" }, spec: { nodes: { vmsPerNode: 3 } } });
    assert.equal(result.ok && result.spec.nodes.vmsPerNode, 3);
  });

  it("reports every error with its path", () => {
    const result = parsePolicy({
      instanceTypes: [
        { name: "a", vcpus: 0, memoryMiB: 1024 },
        { name: "a", vcpus: 1, memoryMiB: 1024 },
      ],
      defaultInstanceType: "nope",
      scheduling: { strategy: "Random" },
      allowedInstanceTypes: { team: ["b"] },
      extra: true,
    });
    assert.equal(result.ok, false);
    const paths = result.ok ? [] : result.errors.map((e) => e.path);
    for (const path of ["instanceTypes.0.vcpus", "scheduling.strategy", "(root)"]) assert.ok(paths.includes(path), `${path} in ${paths.join(", ")}`);
  });

  it("checks cross-field references", () => {
    const result = parsePolicy({ instanceTypes: [{ name: "a", vcpus: 1, memoryMiB: 1024 }, { name: "a", vcpus: 2, memoryMiB: 1024 }], defaultInstanceType: "nope", allowedInstanceTypes: { team: ["b"] } });
    const messages = result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
    assert.deepEqual(messages.sort(), [
      'allowedInstanceTypes.team.0: "b" is not in instanceTypes',
      'defaultInstanceType: "nope" is not in instanceTypes',
      'instanceTypes.1.name: duplicate instance type "a"',
    ]);
  });

  it("reports field and cross-field errors together, in one pass", () => {
    const result = parsePolicy({
      limits: { maxVMs: "ten" },
      scheduling: { strategy: "Random" },
      defaultInstanceType: "nope",
      allowedInstanceTypes: { team: ["huge"] },
      provider: { name: "qemu", qemu: { accelerator: "hvf" } },
      typo: true,
    });
    const paths = result.ok ? [] : result.errors.map((e) => e.path);
    assert.deepEqual(paths.sort(), ["(root)", "allowedInstanceTypes.team.0", "defaultInstanceType", "limits.maxVMs", "provider.qemu.accelerator", "scheduling.strategy"]);
  });

  it("validates each provider's settings block as part of the policy, with defaults filled in", () => {
    const good = parsePolicy({ provider: { name: "qemu", qemu: { maxVMs: 4 } } });
    assert.ok(good.ok);
    assert.deepEqual(good.spec.provider.qemu, { binary: "qemu-system-x86_64", accelerator: "auto", machine: "auto", maxVMs: 4, heartbeatSeconds: 5, agentPort: 1024, network: "auto", isolateNetwork: true, probeTimeoutSeconds: 90 });
    const bad = parsePolicy({ apiVersion: "peerpods.io/v1alpha1", kind: "PeerPodPolicy", spec: { provider: { qemu: { maxVMs: -1, binaryy: "qemu" }, aws: { region: "Europe", imageId: "ami-1" }, sim: { errorRate: 2 } } } });
    assert.deepEqual(bad.ok ? [] : bad.errors.map((e) => e.path).sort(), ["spec.provider.aws.region", "spec.provider.qemu", "spec.provider.qemu.maxVMs", "spec.provider.sim.errorRate"]);
  });

  it("asks for the chosen provider's block when its settings have required fields", () => {
    const result = parsePolicy({ provider: { name: "aws" } });
    assert.deepEqual(result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message.split(" (")[0]}`).sort(), [
      'provider.aws.imageId: required when provider.name is "aws"',
      'provider.aws.region: required when provider.name is "aws"',
    ]);
    assert.ok(parsePolicy({ provider: { name: "aws", aws: { region: "eu-west-1", imageId: "ami-0123" } } }).ok);
    assert.ok(parsePolicy({ provider: { name: "sim" } }).ok, "a provider whose settings all have defaults needs no block");
  });

  it("validates the warm pool against the catalog", () => {
    const good = parsePolicy({ warmPool: { pools: [{ instanceType: "small", min: 2, max: 3, maxIdleSeconds: 600 }], maxIdleCost: 1 } });
    assert.ok(good.ok);
    assert.deepEqual(good.spec.warmPool?.pools[0], { instanceType: "small", min: 2, max: 3, maxIdleSeconds: 600 });
    const bad = parsePolicy({ warmPool: { pools: [{ instanceType: "huge", min: 1 }, { instanceType: "small", min: 3, max: 2 }, { instanceType: "small", min: -1 }], maxIdleCost: -1 } });
    assert.deepEqual(bad.ok ? [] : bad.errors.map((e) => e.path).sort(), [
      "warmPool.maxIdleCost",
      "warmPool.pools.0.instanceType",
      "warmPool.pools.1.max",
      "warmPool.pools.2.instanceType",
      "warmPool.pools.2.min",
    ]);
  });

  it("rejects a malformed resource name", () => {
    assert.equal(parsePolicy({ extendedResourceName: "not a name" }).ok, false);
  });

  it("compiles allowed types with a * fallback", () => {
    const result = parsePolicy({ allowedInstanceTypes: { "*": ["small"], team: ["small", "large"] } });
    assert.ok(result.ok);
    const policy = compilePolicy(result.spec, 1);
    assert.deepEqual([...policy.allowedFor("team")], ["small", "large"]);
    assert.deepEqual([...policy.allowedFor("other")], ["small"]);
    assert.deepEqual(policy.byPreference.map((t) => t.name), ["small", "medium", "large"]);
  });
});
