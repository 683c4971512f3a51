import assert from "node:assert/strict";
import { parseMilli, parseUnits, QuantityError } from "./quantity.js";

describe("quantity", () => {
  const milli: [string, number][] = [
    ["1", 1000],
    ["100m", 100],
    ["0.5", 500],
    ["1.5", 1500],
    [".25", 250],
    ["2e3", 2_000_000],
    ["1k", 1_000_000],
    ["1n", 1],
    ["1500u", 2],
    ["0", 0],
  ];
  for (const [input, expected] of milli) it(`cpu ${input} → ${expected}m`, () => assert.equal(parseMilli(input), expected));

  const units: [string, number][] = [
    ["128Mi", 128 * 1024 * 1024],
    ["1Gi", 1024 ** 3],
    ["1G", 1e9],
    ["1.5Gi", 1.5 * 1024 ** 3],
    ["100", 100],
    ["1e6", 1e6],
    ["500m", 1],
  ];
  for (const [input, expected] of units) it(`memory ${input} → ${expected}`, () => assert.equal(parseUnits(input), expected));

  for (const bad of ["-1", "abc", "1Xi", "", "1.2.3", "1000Ei", "1e40"]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseUnits(bad), QuantityError));
  }
  it("rejects non-strings", () => assert.throws(() => parseMilli({}), /must be a string/));
  it("accepts JSON numbers", () => assert.equal(parseMilli(2), 2000));
});
