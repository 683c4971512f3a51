import assert from "node:assert/strict";
import { claimCheck, claimedTags } from "./claim.js";
import { ProviderError, TAG, type ClaimSpec, type Instance, type InstanceState } from "./types.js";

const vm = (tags: Record<string, string>, state: InstanceState = "running"): Instance => ({
  id: "vm-1",
  name: "pool-1",
  state,
  ready: state === "running",
  instanceType: "small",
  tags,
  createdAt: new Date(0),
});
const claim: ClaimSpec = { name: "pp-u1", userData: "{}", tags: { [TAG.cluster]: "c1", [TAG.podUid]: "u1" } };
const kind = (expected: string) => (error: unknown) => error instanceof ProviderError && error.kind === expected;

describe("claimCheck", () => {
  it("lets a pod claim a pool VM", () => {
    const pooled = vm({ [TAG.cluster]: "c1", [TAG.pool]: "true" });
    assert.deepEqual(claimCheck("vm-1", pooled, claim), { instance: pooled, owned: false });
  });

  it("answers a repeated claim by the same pod with its VM as it is", () => {
    const mine = vm({ [TAG.cluster]: "c1", [TAG.podUid]: "u1" });
    assert.deepEqual(claimCheck("vm-1", mine, claim), { instance: mine, owned: true });
  });

  it("refuses another pod's VM as invalid, naming that pod", () => {
    assert.throws(() => claimCheck("vm-1", vm({ [TAG.podUid]: "u2" }), claim), (e) => kind("invalid")(e) && /belongs to pod u2/.test((e as Error).message));
    assert.throws(() => claimCheck("vm-1", vm({}), claim), (e) => kind("invalid")(e) && /\(none\)/.test((e as Error).message));
  });

  it("reports a VM that is gone, or on its way out, as not found", () => {
    assert.throws(() => claimCheck("vm-1", undefined, claim), kind("notFound"));
    assert.throws(() => claimCheck("vm-1", vm({ [TAG.pool]: "true" }, "terminated"), claim), kind("notFound"));
    assert.throws(() => claimCheck("vm-1", vm({ [TAG.pool]: "true" }, "stopping"), claim), kind("notFound"));
  });
});

describe("claimedTags", () => {
  it("adds the pod's tags, drops the pool marker and keeps the rest", () => {
    assert.deepEqual(claimedTags({ [TAG.pool]: "true", keep: "me", [TAG.cluster]: "old" }, claim.tags), { keep: "me", [TAG.cluster]: "c1", [TAG.podUid]: "u1" });
  });
});
