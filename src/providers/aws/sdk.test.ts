import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

describe("the AWS SDK on this Node.js", () => {
  // The SDK warns once per process, so a fresh process sees whether it would.
  it("builds an EC2 client without a warning (no NodeVersionSupportWarning)", () => {
    const env = { ...process.env };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const script = "import { EC2Client } from '@aws-sdk/client-ec2'; new EC2Client({ region: 'eu-west-1' });";
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env, timeout: 30_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, "");
  });
});
