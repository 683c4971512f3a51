import assert from "node:assert/strict";
import { parseAwsSettings } from "./settings.js";

describe("aws settings", () => {
  it("fills the defaults", () => {
    const settings = parseAwsSettings({ region: "eu-west-1", imageId: "ami-0abc" });
    assert.deepEqual(settings.subnetIds, []);
    assert.equal(settings.agentPort, 15150);
    assert.equal(settings.statusChecks, true);
    assert.equal(settings.readyPollMs, 2000);
    assert.equal(settings.maxAttempts, 5);
  });

  it("names every bad field", () => {
    assert.throws(
      () => parseAwsSettings({ region: "Europe", imageId: "img-1", subnetIds: ["sn-1"], endpoint: "not a url" }),
      (error: Error) => ["provider.aws.region", "provider.aws.imageId", "provider.aws.subnetIds.0", "provider.aws.endpoint"].every((path) => error.message.includes(path)),
    );
    assert.throws(() => parseAwsSettings(undefined), /provider\.aws\.region/);
  });

  it("has no place for credentials and does not echo their values", () => {
    assert.throws(
      () => parseAwsSettings({ region: "eu-west-1", imageId: "ami-0abc", accessKeyId: "AKIAEXAMPLE", secretAccessKey: "very-secret" }),
      (error: Error) => /accessKeyId/.test(error.message) && !error.message.includes("very-secret") && !error.message.includes("AKIAEXAMPLE"),
    );
  });

  it("keeps extra tags off the keys peerpods sets and AWS reserves", () => {
    for (const key of ["Name", "peerpods.io/pod-uid", "aws:cloudformation:stack-name"]) {
      assert.throws(() => parseAwsSettings({ region: "eu-west-1", imageId: "ami-0abc", extraTags: { [key]: "x" } }), /extraTags/);
    }
    assert.deepEqual(parseAwsSettings({ region: "eu-west-1", imageId: "ami-0abc", extraTags: { team: "a" } }).extraTags, { team: "a" });
  });
});
