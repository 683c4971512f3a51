import assert from "node:assert/strict";
import { crossFieldIssues } from "./cross-field.js";

const at = (spec: unknown): string[] => crossFieldIssues(spec).map((issue) => `${issue.path.join(".")}: ${issue.message}`);
const catalog = [
  { name: "small", vcpus: 1, memoryMiB: 512 },
  { name: "large", vcpus: 4, memoryMiB: 4096 },
];

describe("crossFieldIssues", () => {
  it("finds nothing wrong with a consistent spec", () => {
    assert.deepEqual(at({ instanceTypes: catalog, defaultInstanceType: "small", allowedInstanceTypes: { team: ["large"] }, warmPool: { pools: [{ instanceType: "small", min: 1, max: 2 }] }, provider: { name: "qemu" } }), []);
  });

  it("names every reference to a type the catalog lacks, and every duplicate", () => {
    assert.deepEqual(
      at({
        instanceTypes: [...catalog, { name: "small", vcpus: 2, memoryMiB: 512 }],
        defaultInstanceType: "medium",
        allowedInstanceTypes: { team: ["small", "huge"] },
        warmPool: { pools: [{ instanceType: "tiny", min: 1 }, { instanceType: "large", min: 3, max: 2 }, { instanceType: "large", min: 0 }] },
      }),
      [
        'instanceTypes.2.name: duplicate instance type "small"',
        'defaultInstanceType: "medium" is not in instanceTypes',
        'allowedInstanceTypes.team.1: "huge" is not in instanceTypes',
        'warmPool.pools.0.instanceType: "tiny" is not in instanceTypes',
        "warmPool.pools.1.max: max (2) is below min (3)",
        'warmPool.pools.2.instanceType: duplicate pool for "large"',
      ],
    );
  });

  it("reads what is well-formed in a spec whose own fields are not, and skips the rest", () => {
    // a type with a bad vcpus still names itself; a malformed entry names nothing
    assert.deepEqual(at({ instanceTypes: [{ name: "small", vcpus: 0 }, "junk"], defaultInstanceType: "small", allowedInstanceTypes: { team: "small", ops: [7, "gone"] } }), [
      'allowedInstanceTypes.ops.1: "gone" is not in instanceTypes',
    ]);
    // without a readable catalog, no reference can be judged
    assert.deepEqual(at({ instanceTypes: "small", defaultInstanceType: "small", warmPool: { pools: [{ instanceType: "x", min: 2, max: 1 }] } }), ["warmPool.pools.0.max: max (1) is below min (2)"]);
    assert.deepEqual(at("not a spec"), []);
    assert.deepEqual(at({ warmPool: { pools: "none" }, provider: "aws" }), []);
  });

  it("asks for the chosen provider's block only when its settings have required fields", () => {
    assert.deepEqual(at({ provider: { name: "aws" } }).map((line) => line.split(":")[0]), ["provider.aws.region", "provider.aws.imageId"]);
    assert.deepEqual(at({ provider: { name: "aws", aws: { region: "bad" } } }), [], "a block that is there is checked by its own schema");
    assert.deepEqual(at({ provider: { name: "qemu" } }), []);
    assert.deepEqual(at({ provider: { name: "gcp" } }), [], "an unknown name is the enum's error");
  });
});
