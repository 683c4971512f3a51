import assert from "node:assert/strict";
import { z } from "zod";
import { parseProviderSettings } from "./settings.js";
import { ProviderError } from "./types.js";

describe("parseProviderSettings", () => {
  const schema = z.strictObject({ maxVMs: z.number().int().min(0).default(4), zone: z.string().optional() });

  it("fills the defaults, for a missing block too", () => {
    assert.deepEqual(parseProviderSettings("demo", schema, { zone: "a" }), { maxVMs: 4, zone: "a" });
    assert.deepEqual(parseProviderSettings("demo", schema, undefined), { maxVMs: 4 });
  });

  it("refuses bad settings as invalid, naming every bad field by its policy path", () => {
    assert.throws(
      () => parseProviderSettings("demo", schema, { maxVMs: -1, zone: 3 }),
      (error: unknown) =>
        error instanceof ProviderError &&
        error.kind === "invalid" &&
        /^invalid demo provider settings: provider\.demo\.maxVMs: .+; provider\.demo\.zone: /.test(error.message),
    );
  });
});
