import assert from "node:assert/strict";
import { procState } from "./process.js";

describe("procState", () => {
  it("reads the state after the command name, even one with spaces and parentheses", () => {
    assert.equal(procState("4242 (qemu-system-x86) S 1 4242 4242 0 -1"), "S");
    assert.equal(procState("77 (odd) name) Z 1 77"), "Z");
  });
});
