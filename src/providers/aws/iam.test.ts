import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

interface Statement {
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string>>;
}

const policy = JSON.parse(readFileSync(new URL("../../../manifests/aws/iam-policy.json", import.meta.url), "utf8")) as { Statement: Statement[] };
const actionsOf = (statement: Statement): string[] => [statement.Action].flat();

/** The EC2 calls the provider makes, read off its source so the policy cannot drift from the code. */
function calledActions(): Set<string> {
  const source = readFileSync(new URL("./provider.ts", import.meta.url), "utf8");
  const commands = [...source.matchAll(/new (\w+)Command\(/g)].map((match) => `ec2:${match[1]}`);
  const paginated = [...source.matchAll(/paginate(\w+)\(/g)].map((match) => `ec2:${match[1]}`);
  return new Set([...commands, ...paginated]);
}

describe("aws IAM policy (manifests/aws/iam-policy.json)", () => {
  it("allows every EC2 call the provider makes, and no other EC2 action but the tagging at launch and at a pool claim", () => {
    const allowed = new Set(policy.Statement.flatMap(actionsOf).filter((action) => action.startsWith("ec2:")));
    const called = calledActions();
    assert.ok(called.has("ec2:RunInstances") && called.has("ec2:DescribeInstances"), "the source scan finds the calls");
    assert.deepEqual([...allowed].sort(), [...new Set([...called, "ec2:CreateTags"])].sort());
  });

  it("uses no wildcard action and confines mutating calls to this cluster's tag or to launching", () => {
    for (const statement of policy.Statement) {
      assert.ok(actionsOf(statement).every((action) => !action.includes("*")), `${actionsOf(statement).join()} has a wildcard`);
      const mutating = actionsOf(statement).some((action) => /^ec2:(Run|Terminate|Create)/.test(action));
      const touchesInstances = [statement.Resource].flat().some((resource) => resource.includes(":instance/"));
      if (mutating && touchesInstances) assert.ok(statement.Condition, `${actionsOf(statement).join()} on instances needs a condition`);
    }
  });
});
