import assert from "node:assert/strict";
import { z } from "zod";
import { describeErrors, validationErrors } from "./issues.js";

describe("policy validation errors", () => {
  const schema = z.strictObject({ nodes: z.strictObject({ vmsPerNode: z.number().min(0) }) });
  const error = (input: unknown): z.ZodError => {
    const parsed = schema.safeParse(input);
    assert.equal(parsed.success, false);
    return parsed.error!;
  };

  it("gives each issue its dotted path, under a prefix when there is one", () => {
    assert.deepEqual(validationErrors(error({ nodes: { vmsPerNode: -1 } })).map((e) => e.path), ["nodes.vmsPerNode"]);
    assert.deepEqual(validationErrors(error({ nodes: { vmsPerNode: -1 } }), ["provider", "qemu"]).map((e) => e.path), ["provider.qemu.nodes.vmsPerNode"]);
  });

  it("calls the document itself (root)", () => {
    assert.deepEqual(validationErrors(error("text")).map((e) => e.path), ["(root)"]);
  });

  it("puts every error on one line", () => {
    assert.equal(
      describeErrors([
        { path: "a", message: "bad" },
        { path: "b.c", message: "worse" },
      ]),
      "a: bad; b.c: worse",
    );
  });
});
