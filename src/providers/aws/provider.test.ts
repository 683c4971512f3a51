import assert from "node:assert/strict";
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  DescribeSubnetsCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2ClientResolvedConfig,
  type Instance as Ec2Instance,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from "@aws-sdk/client-ec2";
import { mockClient, type AwsStub } from "aws-sdk-client-mock";
import { silentLogger } from "../../log/logger.js";
import { TAG, type InstanceSpec, type ProviderError } from "../types.js";
import { AwsProvider } from "./provider.js";
import { parseAwsSettings } from "./settings.js";

/** Stubs every EC2Client's send while this file's tests run, and only then. */
let ec2: AwsStub<ServiceInputTypes, ServiceOutputTypes, EC2ClientResolvedConfig>;

function ec2Error(name: string, status: number): Error {
  return Object.assign(new Error(`${name} from EC2`), { name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status } });
}

function provider(settings: Record<string, unknown> = {}, clusterId = "c1"): AwsProvider {
  const parsed = parseAwsSettings({ region: "eu-west-1", imageId: "ami-0abc", ...settings });
  return new AwsProvider(new EC2Client({ region: "eu-west-1" }), parsed, { clusterId, stateDir: "/nonexistent", log: silentLogger });
}

const spec = (podUid: string, overrides: Partial<InstanceSpec> = {}): InstanceSpec => ({
  name: `vm-${podUid}`,
  instanceType: { name: "t3.small", vcpus: 2, memoryMiB: 2048, gpus: 0 },
  userData: "{}",
  tags: { [TAG.podUid]: podUid, [TAG.namespace]: "ns", [TAG.podName]: "p" },
  ...overrides,
});

const ec2Instance = (id: string, state: string, extra: Partial<Ec2Instance> = {}): Ec2Instance => ({
  InstanceId: id,
  InstanceType: "t3.small",
  State: { Name: state as "pending" },
  LaunchTime: new Date("2026-01-01T00:00:00Z"),
  ...extra,
});

describe("AwsProvider (stubbed EC2)", () => {
  before(() => {
    ec2 = mockClient(EC2Client);
  });
  after(() => ec2.restore());

  beforeEach(() => {
    ec2.reset();
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    ec2.on(DescribeInstanceStatusCommand).resolves({ InstanceStatuses: [] });
  });

  it("sends the same ClientToken for the same VM after a lost response, and a different one for another VM", async () => {
    ec2.on(RunInstancesCommand).rejectsOnce(ec2Error("TimeoutError", 0)).resolves({ Instances: [ec2Instance("i-1", "pending")] });
    await assert.rejects(provider().create(spec("uid-a")), (error: ProviderError) => error.kind === "retryable");
    await provider().create(spec("uid-a"));
    await provider().create(spec("uid-b"));
    await provider({}, "other-cluster").create(spec("uid-a"));
    const tokens = ec2.commandCalls(RunInstancesCommand).map((call) => call.args[0].input.ClientToken);
    assert.equal(tokens.length, 4);
    assert.equal(tokens[0], tokens[1]);
    assert.equal(new Set(tokens).size, 3, "another VM and another cluster get other tokens");
    assert.ok(tokens.every((token) => token !== undefined && token.length <= 64));
  });

  it("reports a pending instance as pending and not ready, then ready once running with passing status checks", async () => {
    ec2.on(RunInstancesCommand).resolves({ Instances: [ec2Instance("i-1", "pending")] });
    const aws = provider();
    const created = await aws.create(spec("uid-p"));
    assert.equal(created.state, "pending");
    assert.equal(created.ready, false);

    ec2.on(DescribeInstancesCommand, { InstanceIds: ["i-1"] }).resolves({ Reservations: [{ Instances: [ec2Instance("i-1", "pending")] }] });
    assert.deepEqual([(await aws.get("i-1"))?.state, (await aws.get("i-1"))?.ready], ["pending", false]);

    const running = ec2Instance("i-1", "running", { PrivateIpAddress: "10.0.0.7" });
    ec2.on(DescribeInstancesCommand, { InstanceIds: ["i-1"] }).resolves({ Reservations: [{ Instances: [running] }] });
    ec2.on(DescribeInstanceStatusCommand).resolves({ InstanceStatuses: [{ InstanceId: "i-1", InstanceStatus: { Status: "initializing" }, SystemStatus: { Status: "ok" } }] });
    const initializing = await aws.get("i-1");
    assert.deepEqual([initializing?.state, initializing?.ready, initializing?.privateIp], ["running", false, "10.0.0.7"]);

    ec2.on(DescribeInstanceStatusCommand).resolves({ InstanceStatuses: [{ InstanceId: "i-1", InstanceStatus: { Status: "ok" }, SystemStatus: { Status: "ok" } }] });
    assert.equal((await aws.get("i-1"))?.ready, true);
    assert.equal((await provider({ statusChecks: false }).get("i-1"))?.ready, true);
  });

  it("returns the live instance already tagged with the pod UID without launching another", async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [ec2Instance("i-old", "running")] }] });
    const found = await provider().create(spec("uid-x"));
    assert.equal(found.id, "i-old");
    assert.equal(ec2.commandCalls(RunInstancesCommand).length, 0);
    const filters = ec2.commandCalls(DescribeInstancesCommand)[0]?.args[0].input.Filters;
    assert.deepEqual(filters, [
      { Name: `tag:${TAG.cluster}`, Values: ["c1"] },
      { Name: `tag:${TAG.podUid}`, Values: ["uid-x"] },
      { Name: "instance-state-name", Values: ["pending", "running"] },
    ]);
  });

  it("moves to the next token when EC2 says the token's instance was terminated", async () => {
    ec2
      .on(RunInstancesCommand)
      .rejectsOnce(ec2Error("IdempotentInstanceTerminated", 400))
      .resolvesOnce({ Instances: [ec2Instance("i-dead", "terminated")] })
      .resolves({ Instances: [ec2Instance("i-new", "pending")] });
    const created = await provider().create(spec("uid-t"));
    assert.equal(created.id, "i-new");
    const tokens = new Set(ec2.commandCalls(RunInstancesCommand).map((call) => call.args[0].input.ClientToken));
    assert.equal(tokens.size, 3);
  });

  it("tries the subnet of another allowed zone on a zone capacity error, never a zone the type is not offered in", async () => {
    ec2.on(DescribeSubnetsCommand).resolves({
      Subnets: [
        { SubnetId: "subnet-a", AvailabilityZone: "z-a" },
        { SubnetId: "subnet-b", AvailabilityZone: "z-b" },
        { SubnetId: "subnet-c", AvailabilityZone: "z-c" },
      ],
    });
    ec2.on(RunInstancesCommand).rejects(ec2Error("InsufficientInstanceCapacity", 500));
    const aws = provider({ subnetIds: ["subnet-a", "subnet-b", "subnet-c"] });
    const type = { name: "t3.small", vcpus: 2, memoryMiB: 2048, gpus: 0, zones: ["z-a", "z-c"] };
    await assert.rejects(aws.create(spec("uid-z", { instanceType: type })), (error: ProviderError) => error.kind === "quota");
    const tried = ec2.commandCalls(RunInstancesCommand).map((call) => call.args[0].input.SubnetId);
    assert.deepEqual([...tried].sort(), ["subnet-a", "subnet-c"]);
    assert.equal(ec2.commandCalls(DescribeSubnetsCommand).length, 1);

    ec2.resetHistory();
    ec2.on(RunInstancesCommand).rejects(ec2Error("VcpuLimitExceeded", 400));
    await assert.rejects(aws.create(spec("uid-q", { instanceType: type })), (error: ProviderError) => error.kind === "quota");
    assert.equal(ec2.commandCalls(RunInstancesCommand).length, 1, "an account quota is not a zone problem");
    assert.equal(ec2.commandCalls(DescribeSubnetsCommand).length, 0, "subnet zones are cached");
  });

  it("still knows an instance it just launched while EC2's reads do not list it yet, and forgets it once deleted", async () => {
    ec2.on(RunInstancesCommand).resolves({ Instances: [ec2Instance("i-new", "pending")] });
    ec2.on(DescribeInstancesCommand, { InstanceIds: ["i-new"] }).rejects(ec2Error("InvalidInstanceID.NotFound", 400));
    ec2.on(DescribeInstancesCommand, { InstanceIds: ["i-other"] }).rejects(ec2Error("InvalidInstanceID.NotFound", 400));
    ec2.on(TerminateInstancesCommand).resolves({});
    const aws = provider();
    await aws.create(spec("uid-c"));
    assert.deepEqual([(await aws.get("i-new"))?.id, (await aws.get("i-new"))?.state], ["i-new", "pending"]);
    assert.equal(await aws.get("i-other"), undefined);
    assert.equal(await provider().get("i-new"), undefined, "another process never launched it");
    await aws.delete("i-new");
    assert.equal(await aws.get("i-new"), undefined);
  });

  it("treats a terminate of an unknown instance as done and maps other failures", async () => {
    ec2.on(TerminateInstancesCommand).rejectsOnce(ec2Error("InvalidInstanceID.NotFound", 400)).rejects(ec2Error("UnauthorizedOperation", 403));
    await provider().delete("i-gone");
    await assert.rejects(provider().delete("i-1"), (error: ProviderError) => error.kind === "invalid" && /UnauthorizedOperation/.test(error.message));
  });

  it("refuses an image that is not an AMI and user data beyond EC2's limit before calling EC2", async () => {
    await assert.rejects(provider().create(spec("uid-i", { image: "/var/lib/images/pod.qcow2" })), (error: ProviderError) => error.kind === "invalid");
    await assert.rejects(provider().create(spec("uid-u", { userData: "x".repeat(20_000) })), (error: ProviderError) => error.kind === "invalid");
    assert.equal(ec2.commandCalls(RunInstancesCommand).length, 0);
  });

  it("claims a pool instance by tagging it for the pod first and dropping the pool tag last; a claimed one is not claimed again", async () => {
    const poolTags = [{ Key: TAG.cluster, Value: "c1" }, { Key: TAG.pool, Value: "true" }];
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [ec2Instance("i-pool", "running", { Tags: poolTags })] }] });
    ec2.on(CreateTagsCommand).resolves({});
    ec2.on(DeleteTagsCommand).resolves({});
    const claim = { name: "pp-uid-1", userData: "{}", tags: { [TAG.cluster]: "c1", [TAG.podUid]: "uid-1" } };
    const claimed = await provider().claim("i-pool", claim);
    assert.deepEqual(claimed.tags, { [TAG.cluster]: "c1", [TAG.podUid]: "uid-1", Name: "pp-uid-1" });
    const [create] = ec2.commandCalls(CreateTagsCommand);
    const [remove] = ec2.commandCalls(DeleteTagsCommand);
    assert.deepEqual(create?.args[0].input.Tags, [{ Key: TAG.cluster, Value: "c1" }, { Key: TAG.podUid, Value: "uid-1" }, { Key: "Name", Value: "pp-uid-1" }]);
    assert.deepEqual(remove?.args[0].input, { Resources: ["i-pool"], Tags: [{ Key: TAG.pool }] });
    const tagCalls = ec2.calls().map((call) => (call.args[0] as object).constructor.name).filter((name) => name.endsWith("TagsCommand"));
    assert.deepEqual(tagCalls, ["CreateTagsCommand", "DeleteTagsCommand"], "the pod's tags go on before the pool tag comes off");

    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [ec2Instance("i-pool", "running", { Tags: [{ Key: TAG.podUid, Value: "uid-1" }] })] }] });
    await provider().claim("i-pool", claim);
    assert.equal(ec2.commandCalls(CreateTagsCommand).length, 1, "a repeated claim by the same pod changes nothing");
    await assert.rejects(provider().claim("i-pool", { ...claim, tags: { [TAG.podUid]: "uid-2" } }), (error: ProviderError) => error.kind === "invalid");
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    await assert.rejects(provider().claim("i-gone", claim), (error: ProviderError) => error.kind === "notFound");
  });
});
