import assert from "node:assert/strict";
import { compilePolicy } from "./compiled.js";
import { policySpecSchema } from "./schema.js";

describe("CompiledPolicy.isPeerPod", () => {
  const policy = compilePolicy(policySpecSchema.parse({ runtimeClassNames: ["kata-remote", "peerpods"], excludedNamespaces: ["kube-system", "infra"] }), 1);

  it("takes a pod of any of the policy's RuntimeClasses", () => {
    assert.equal(policy.isPeerPod("kata-remote", "team"), true);
    assert.equal(policy.isPeerPod("peerpods", "team"), true);
  });

  it("leaves pods of other or no RuntimeClass alone", () => {
    assert.equal(policy.isPeerPod("runc", "team"), false);
    assert.equal(policy.isPeerPod(undefined, "team"), false);
    assert.equal(policy.isPeerPod(null, "team"), false);
  });

  it("leaves every pod of an excluded namespace alone, whatever its RuntimeClass", () => {
    assert.equal(policy.isPeerPod("kata-remote", "kube-system"), false);
    assert.equal(policy.isPeerPod("peerpods", "infra"), false);
  });
});
