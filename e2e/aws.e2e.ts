import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import {
  CreateSecurityGroupCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  EC2Client,
  RunInstancesCommand,
  type Instance as Ec2Instance,
} from "@aws-sdk/client-ec2";
import { pino } from "pino";
import { parse } from "yaml";
import { createProvider } from "../src/providers/aws/index.js";
import { TAG, type InstanceSpec, type Provider, type ProviderError } from "../src/providers/types.js";
import type { InstanceType } from "../src/policy/schema.js";
import { VM_READY_CONDITION } from "../src/kube/annotations.js";
import { awsApiCalls, awsApiRetries } from "../src/metrics/aws.js";
import { PEERPOD_GROUP, PEERPOD_PLURAL, PEERPOD_VERSION, type PeerPod } from "../src/kube/peerpod.js";
import { FaultProxy } from "./aws/fault-proxy.js";
import { atExit } from "./cluster/process.js";
import { createNamespace, giveVmSlots, installLocalOverlay } from "./support/suite.js";
import { cluster } from "./setup.js";
import { applyObjects, withWebhookUrl, removeWebhookConfigs } from "./support/manifests.js";
import { MOTO_CREDENTIALS, startMoto, type Moto } from "./support/moto.js";
import { localAgentCa } from "./support/certs.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

const REGION = "eu-west-1";
const CLUSTER = "moto-suite";
const SMALL: InstanceType = { name: "t3.small", vcpus: 2, memoryMiB: 2048, gpus: 0 };

describe("aws provider against moto_server", function () {
  this.timeout(60_000);
  let moto: Moto;
  let proxy: FaultProxy;
  let ec2: EC2Client;
  let imageId: string;
  let subnets: { id: string; zone: string }[];
  const logLines: string[] = [];
  const providers: Provider[] = [];
  const savedCredentials = Object.fromEntries(Object.keys(MOTO_CREDENTIALS).map((key) => [key, process.env[key]]));

  before(async () => {
    Object.assign(process.env, MOTO_CREDENTIALS);
    moto = await startMoto();
    proxy = new FaultProxy(moto.endpoint);
    const proxyEndpoint = await proxy.start();
    ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint });
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }));
    imageId = images.Images?.find((image) => image.Platform === undefined)?.ImageId ?? assert.fail("moto has no Linux image");
    const found = await ec2.send(new DescribeSubnetsCommand({}));
    subnets = (found.Subnets ?? []).map((subnet) => ({ id: subnet.SubnetId ?? "", zone: subnet.AvailabilityZone ?? "" }));
    assert.ok(subnets.length >= 3, "moto's default VPC has a subnet per zone");
    settings = { region: REGION, endpoint: proxyEndpoint, imageId, subnetIds: subnets.map((subnet) => subnet.id), pageSize: 5 };
  });

  after(async () => {
    await Promise.all(providers.map((provider) => provider.close()));
    ec2?.destroy();
    await proxy?.stop();
    await moto?.stop();
    for (const [key, value] of Object.entries(savedCredentials)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  beforeEach(() => proxy.reset());

  let settings: Record<string, unknown>;
  async function provider(overrides: Record<string, unknown> = {}): Promise<Provider> {
    const log = pino({ level: "debug" }, new Writable({ write: (chunk: Buffer, _encoding, done) => done(void logLines.push(chunk.toString())) }));
    const created = await createProvider({ ...settings, ...overrides }, { clusterId: CLUSTER, stateDir: "/nonexistent", log });
    providers.push(created);
    return created;
  }

  function spec(pod: string, overrides: Partial<InstanceSpec> = {}): InstanceSpec {
    return {
      name: `peerpod-${pod}`,
      instanceType: SMALL,
      userData: JSON.stringify({ pod, agent: { port: 15150 } }),
      tags: { [TAG.cluster]: CLUSTER, [TAG.podUid]: pod, [TAG.namespace]: "default", [TAG.podName]: `name-${pod}` },
      ...overrides,
    };
  }

  async function describe(id: string): Promise<Ec2Instance> {
    const output = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return output.Reservations?.[0]?.Instances?.[0] ?? assert.fail(`moto has no instance ${id}`);
  }

  it("creates an instance with the pod's tags, instance type, security groups, root volume and cloud-init user data, reporting its private IP", async () => {
    // The pod VMs' groups let the nodes in on the agent port and UDP 4789 (VXLAN); every instance gets them.
    const vpcId = (await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnets[0]!.id] }))).Subnets?.[0]?.VpcId;
    const groupIds = await Promise.all(
      ["peerpods-pod-vms", "peerpods-extra"].map(async (GroupName) => (await ec2.send(new CreateSecurityGroupCommand({ GroupName, Description: GroupName, VpcId: vpcId }))).GroupId ?? assert.fail("no group id")),
    );
    const aws = await provider({ extraTags: { team: "platform" }, rootVolumeGiB: 20, securityGroupIds: groupIds });
    const created = await aws.create(spec("uid-create"));
    assert.match(created.id, /^i-/);
    const instance = await describe(created.id);
    assert.deepEqual(instance.SecurityGroups?.map((group) => group.GroupId).sort(), [...groupIds].sort());
    assert.match(instance.PrivateIpAddress ?? "", /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(created.privateIp, instance.PrivateIpAddress);
    assert.equal(created.agentEndpoint, `tcp:${instance.PrivateIpAddress}:15150`);
    assert.equal(instance.InstanceType, "t3.small");
    assert.equal(instance.ImageId, imageId);
    const tags = Object.fromEntries((instance.Tags ?? []).map((tag) => [tag.Key, tag.Value]));
    assert.deepEqual(tags, {
      [TAG.cluster]: CLUSTER,
      [TAG.podUid]: "uid-create",
      [TAG.namespace]: "default",
      [TAG.podName]: "name-uid-create",
      [TAG.instanceType]: "t3.small",
      Name: "peerpod-uid-create",
      team: "platform",
    });
    const attribute = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: created.id, Attribute: "userData" }));
    const userData = Buffer.from(attribute.UserData?.Value ?? "", "base64").toString("utf8");
    assert.match(userData, /^#cloud-config\n/);
    assert.ok(!userData.includes(MOTO_CREDENTIALS.AWS_SECRET_ACCESS_KEY) && !userData.includes(MOTO_CREDENTIALS.AWS_ACCESS_KEY_ID));
    const [file] = (parse(userData) as { write_files: { path: string; content: string; permissions: string }[] }).write_files;
    assert.equal(file?.path, "/run/peerpods/agent-config");
    assert.equal(file?.permissions, "0600");
    assert.deepEqual(JSON.parse(Buffer.from(file?.content ?? "", "base64").toString("utf8")), { pod: "uid-create", agent: { port: 15150 } });
    const volumes = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: `tag:${TAG.podUid}`, Values: ["uid-create"] }] }));
    assert.deepEqual(volumes.Volumes?.map((volume) => volume.Size), [20]);
  });

  it("reports the instance running and ready with its private address, and a second create returns it", async () => {
    const aws = await provider();
    const first = await aws.create(spec("uid-twice"));
    const seen = await aws.get(first.id);
    assert.equal(seen?.state, "running");
    assert.equal(seen?.ready, true);
    assert.match(seen?.privateIp ?? "", /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(seen?.agentEndpoint, `tcp:${seen?.privateIp}:15150`);
    assert.equal(seen?.name, "peerpod-uid-twice");
    proxy.reset();
    const second = await aws.create(spec("uid-twice"));
    assert.equal(second.id, first.id);
    assert.equal(proxy.count("RunInstances"), 0, "the tag lookup found the instance");
    assert.equal((await aws.list({ [TAG.podUid]: "uid-twice" })).length, 1);
  });

  it("hands a warm-pool instance to a pod: the pod's tags replace the pool tag, and a create for the pod finds it", async () => {
    const aws = await provider();
    assert.ok(aws.claim, "the aws provider supports the warm pool");
    const pool = await aws.create({ name: "pool-t3-small-1", instanceType: SMALL, userData: "{}", tags: { [TAG.cluster]: CLUSTER, [TAG.pool]: "t3.small" } });
    const claim = { name: "peerpod-uid-claim", tags: spec("uid-claim").tags, userData: "{}" };
    const claimed = await aws.claim(pool.id, claim);
    assert.equal(claimed.id, pool.id);
    const tags = Object.fromEntries(((await describe(pool.id)).Tags ?? []).map((tag) => [tag.Key, tag.Value]));
    assert.equal(tags[TAG.pool], undefined);
    assert.deepEqual([tags[TAG.podUid], tags[TAG.podName], tags.Name], ["uid-claim", "name-uid-claim", "peerpod-uid-claim"]);
    assert.equal((await aws.claim(pool.id, claim)).id, pool.id, "claiming again is a no-op");
    proxy.reset();
    assert.equal((await aws.create(spec("uid-claim"))).id, pool.id);
    assert.equal(proxy.count("RunInstances"), 0);
    await assert.rejects(aws.claim(pool.id, { ...claim, tags: spec("uid-other").tags }), (error: ProviderError) => error.kind === "invalid");
    await aws.delete(pool.id);
    await assert.rejects(aws.claim(pool.id, claim), (error: ProviderError) => error.kind === "notFound");
  });

  it("lists by tag across pages", async () => {
    const aws = await provider();
    const pods = Array.from({ length: 12 }, (_, i) => `uid-page-${i}`);
    for (const pod of pods) await aws.create(spec(pod, { tags: { ...spec(pod).tags, [TAG.namespace]: "paging" } }));
    proxy.reset();
    const listed = await aws.list({ [TAG.cluster]: CLUSTER, [TAG.namespace]: "paging" });
    assert.deepEqual(listed.map((instance) => instance.tags[TAG.podUid]).sort(), [...pods].sort());
    assert.ok(proxy.count("DescribeInstances") >= 3, `12 instances in pages of 5 take 3 calls, saw ${proxy.count("DescribeInstances")}`);
    assert.deepEqual(await aws.list({ [TAG.cluster]: "another-cluster" }), []);
  });

  it("deletes: terminated, gone from list, and deleting again or an unknown id succeeds", async () => {
    const aws = await provider();
    const created = await aws.create(spec("uid-delete"));
    await aws.delete(created.id);
    assert.equal((await aws.get(created.id))?.state, "terminated");
    assert.deepEqual(await aws.list({ [TAG.podUid]: "uid-delete" }), []);
    await aws.delete(created.id);
    await aws.delete("i-0123456789abcdef0");
    assert.equal(await aws.get("i-0123456789abcdef0"), undefined);
    const again = await aws.create(spec("uid-delete"));
    assert.notEqual(again.id, created.id, "a pod whose VM was terminated gets a new one");
  });

  it("places the VM in a subnet of a zone the instance type is offered in", async () => {
    const aws = await provider();
    const zone = subnets[1]?.zone ?? "";
    for (const pod of ["uid-zone-a", "uid-zone-b", "uid-zone-c"]) {
      const created = await aws.create(spec(pod, { instanceType: { ...SMALL, zones: [zone] } }));
      assert.equal(created.zone, zone);
      assert.equal((await describe(created.id)).SubnetId, subnets[1]?.id);
    }
    await assert.rejects(aws.create(spec("uid-zone-none", { instanceType: { ...SMALL, zones: ["us-east-1a"] } })), (error: ProviderError) => {
      assert.equal(error.kind, "invalid");
      assert.match(error.message, /no configured subnet is in a zone/);
      return true;
    });
  });

  it("retries throttled calls and reports throttling beyond the retry budget as retryable", async () => {
    const aws = await provider();
    const retriesBefore = await metricSum(awsApiRetries);
    proxy.inject({ code: "RequestLimitExceeded", status: 503, times: 2 });
    const created = await aws.create(spec("uid-throttled"));
    assert.deepEqual(proxy.faulted.length, 2);
    assert.equal((await metricSum(awsApiRetries)) - retriesBefore, 2, "the retries are counted");
    assert.equal((await aws.get(created.id))?.tags[TAG.podUid], "uid-throttled");

    const impatient = await provider({ maxAttempts: 2 });
    proxy.reset();
    proxy.inject({ action: "DescribeInstances", code: "RequestLimitExceeded", status: 503, times: 5 });
    await assert.rejects(impatient.list({ [TAG.cluster]: CLUSTER }), (error: ProviderError) => {
      assert.equal(error.kind, "retryable");
      assert.match(error.message, /RequestLimitExceeded/);
      return true;
    });
    assert.equal(proxy.faulted.length, 2, "one call and one retry");
    assert.equal(await metricSum(awsApiCalls, { action: "DescribeInstances", outcome: "RequestLimitExceeded" }), 1);
  });

  it("tries another zone when one has no capacity, but not when the account is out of quota", async () => {
    // EC2 answers InsufficientInstanceCapacity with a 500, which the SDK retries in place first.
    const aws = await provider({ maxAttempts: 2 });
    proxy.inject({ action: "RunInstances", code: "InsufficientInstanceCapacity", status: 500, times: 2 });
    const created = await aws.create(spec("uid-capacity"));
    const tried = proxy.calls.filter((call) => call.get("Action") === "RunInstances").map((call) => call.get("SubnetId"));
    assert.equal(tried.length, 3);
    assert.equal(tried[0], tried[1]);
    assert.notEqual(tried[2], tried[0]);
    assert.equal((await describe(created.id)).SubnetId, tried[2]);

    proxy.reset();
    proxy.inject({ action: "RunInstances", code: "VcpuLimitExceeded", status: 400, times: 1 });
    await assert.rejects(aws.create(spec("uid-quota")), (error: ProviderError) => error.kind === "quota" && /VcpuLimitExceeded/.test(error.message));
    assert.equal(proxy.count("RunInstances"), 1);
  });

  it("reports EC2's message for invalid parameters", async () => {
    const aws = await provider();
    await assert.rejects(aws.create(spec("uid-invalid", { instanceType: { ...SMALL, name: "t3.enormous" } })), (error: ProviderError) => {
      assert.equal(error.kind, "invalid");
      assert.match(error.message, /^RunInstances: .*t3\.enormous/);
      return true;
    });
    await assert.rejects(provider({ imageId: "ami-0000000000000dead", rootVolumeGiB: 8 }).then((aws) => aws.create(spec("uid-noimage"))), (error: ProviderError) => {
      assert.equal(error.kind, "invalid");
      return true;
    });
  });

  it("health: a zone lookup that works, and a clear failure within the timeout when EC2 is unreachable", async () => {
    assert.deepEqual(await (await provider()).health(), { healthy: true });
    const unreachable = await provider({ endpoint: "http://127.0.0.1:9", maxAttempts: 1, healthTimeoutMs: 1000 });
    const started = Date.now();
    const health = await unreachable.health();
    assert.equal(health.healthy, false);
    assert.match(health.message ?? "", /DescribeAvailabilityZones/);
    assert.ok(Date.now() - started < 5000);
  });

  it("rejects credentials in the settings and never logs the ones from the chain", async () => {
    await assert.rejects(provider({ secretAccessKey: "from-settings-secret" }), (error: Error) => {
      assert.match(error.message, /provider\.aws/);
      assert.ok(!error.message.includes("from-settings-secret"));
      return true;
    });
    const logs = logLines.join("");
    assert.ok(logs.includes("instance launched"), "the suite's provider logs were captured");
    assert.ok(!logs.includes(MOTO_CREDENTIALS.AWS_SECRET_ACCESS_KEY));
    assert.ok(!logs.includes(MOTO_CREDENTIALS.AWS_ACCESS_KEY_ID));
  });
});

describe("aws provider on the local control plane: peer pods on moto's EC2", function () {
  this.timeout(120_000);
  const NAMESPACE = "aws-e2e";
  const CLUSTER_ID = "aws-e2e";
  const NODES = ["aws-node-1", "aws-node-2"];
  let moto: Moto;
  let ec2: EC2Client;
  let admin: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let webhookConfig: KubernetesObject[];
  let peerpods: Peerpods;
  let dir: string;
  let imageId: string;
  let zoneB: string;

  /** Every EC2 instance of a pod of this namespace, by pod name. */
  const instancesByPod = async (): Promise<Map<string, Ec2Instance[]>> => {
    const output = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG.namespace}`, Values: [NAMESPACE] }] }));
    const byPod = new Map<string, Ec2Instance[]>();
    for (const instance of output.Reservations?.flatMap((reservation) => reservation.Instances ?? []) ?? []) {
      const pod = instance.Tags?.find((tag) => tag.Key === TAG.podName)?.Value ?? "";
      byPod.set(pod, [...(byPod.get(pod) ?? []), instance]);
    }
    return byPod;
  };
  const peerPodRecords = async (): Promise<PeerPod[]> =>
    ((await custom.listNamespacedCustomObject({ group: PEERPOD_GROUP, version: PEERPOD_VERSION, plural: PEERPOD_PLURAL, namespace: NAMESPACE })) as { items: PeerPod[] })
      .items;

  before(async function () {
    this.timeout(180_000);
    moto = await startMoto();
    ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint, credentials: { accessKeyId: MOTO_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: MOTO_CREDENTIALS.AWS_SECRET_ACCESS_KEY } });
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }));
    imageId = images.Images?.find((image) => image.Platform === undefined)?.ImageId ?? assert.fail("moto has no Linux image");
    const subnets = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? [];
    zoneB = subnets[1]?.AvailabilityZone ?? assert.fail("moto has no second zone");

    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    webhookConfig = await installLocalOverlay(admin);
    await createNamespace(core, NAMESPACE);
    await cluster().addNodes(NODES.map((name) => ({ name })));
    await giveVmSlots(core, NODES, VM_RESOURCE, 20);

    dir = mkdtempSync(join(tmpdir(), "aws-e2e-"));
    atExit(() => rmSync(dir, { recursive: true, force: true }));
    const policyFile = join(dir, "policy.json");
    const policy = {
      instanceTypes: [
        { name: "t3.small", vcpus: 2, memoryMiB: 2048, hourlyCost: 0.02 },
        { name: "t3.xlarge", vcpus: 4, memoryMiB: 16384, hourlyCost: 0.17, zones: [zoneB] },
      ],
      provider: { name: "aws", aws: { region: REGION, endpoint: moto.endpoint, imageId, subnetIds: subnets.map((subnet) => subnet.SubnetId), extraTags: { env: "e2e" } } },
    };
    await writeFile(policyFile, JSON.stringify(policy));
    const kubeconfig = await serviceAccountKubeconfig(admin, { namespace: "peerpods-system", name: "peerpods" }, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    peerpods = await startPeerpods({
      kubeconfig,
      args: ["--parts=webhook,worker", `--policy-file=${policyFile}`, `--cluster-id=${CLUSTER_ID}`, "--no-leader-elect", "--gc-interval=2", "--gc-grace=5", `--agent-tls-dir=${await localAgentCa()}`],
      env: { ...MOTO_CREDENTIALS, AWS_EC2_METADATA_DISABLED: "true" },
    });
    await applyObjects(admin, withWebhookUrl(webhookConfig, peerpods.webhookUrl, peerpods.caBundle));
    await waitFor(
      async () => {
        const probe = await core.createNamespacedPod({ namespace: NAMESPACE, body: awsPeerPod("aws-probe", "100m"), dryRun: "All" });
        return probe.metadata?.annotations?.["peerpods.io/instance-type"] !== undefined;
      },
      { timeoutMs: 20_000, message: "the apiserver to call the webhook" },
    );
  });

  after(async function () {
    this.timeout(60_000);
    await peerpods?.stop();
    await core?.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
    for (const name of NODES) await core?.deleteNode({ name }).catch(() => undefined);
    if (webhookConfig) await removeWebhookConfigs(admin, webhookConfig);
    ec2?.destroy();
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("gives each peer pod an EC2 instance of its type with the pod's tags, and the pods become Ready", async () => {
    const pods = { "aws-small-0": "500m", "aws-small-1": "1", "aws-small-2": "1500m", "aws-large-0": "3" };
    for (const [name, cpu] of Object.entries(pods)) await core.createNamespacedPod({ namespace: NAMESPACE, body: awsPeerPod(name, cpu) });
    const ready = await waitFor(
      async () => {
        const list = (await core.listNamespacedPod({ namespace: NAMESPACE })).items;
        return list.length === 4 && list.every(podReadyWithVm) ? list : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, message: "4 peer pods Ready with their VMs" },
    );
    const byPod = await instancesByPod();
    const records = await peerPodRecords();
    for (const pod of ready) {
      const name = pod.metadata!.name!;
      const instances = byPod.get(name) ?? [];
      assert.equal(instances.length, 1, `${name} has exactly one instance`);
      const instance = instances[0]!;
      const type = name.startsWith("aws-large") ? "t3.xlarge" : "t3.small";
      assert.deepEqual([instance.InstanceType, instance.State?.Name], [type, "running"]);
      const tags = Object.fromEntries((instance.Tags ?? []).map((tag) => [tag.Key, tag.Value]));
      assert.deepEqual([tags[TAG.cluster], tags[TAG.podUid], tags[TAG.podName], tags[TAG.instanceType], tags.env], [CLUSTER_ID, pod.metadata!.uid, name, type, "e2e"]);
      if (type === "t3.xlarge") assert.equal(instance.Placement?.AvailabilityZone, zoneB, "placed in a zone the type is offered in");
      const status = records.find((r) => r.metadata.name === name)?.status;
      assert.deepEqual([status?.instanceID, status?.address, status?.phase], [instance.InstanceId, instance.PrivateIpAddress, "Ready"]);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`)).text();
    const launched = /^peerpods_aws_api_calls_total\{action="RunInstances",outcome="ok"\} (\d+)/m.exec(metrics);
    // at least: a peer pod another suite left behind may get an instance too
    assert.ok(Number(launched?.[1]) >= 4, `EC2 calls are counted on /metrics: ${launched?.[0]}`);
  });

  it("terminates the instances of deleted pods and keeps the others", async () => {
    const before = await instancesByPod();
    const gone = ["aws-small-0", "aws-large-0"];
    await Promise.all(gone.map((name) => core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 })));
    await waitFor(
      async () => {
        const byPod = await instancesByPod();
        const terminated = gone.every((name) => byPod.get(name)?.every((instance) => instance.State?.Name === "terminated"));
        return terminated && (await peerPodRecords()).length === 2;
      },
      { timeoutMs: 30_000, intervalMs: 500, message: "the deleted pods' instances terminated and their PeerPods gone" },
    );
    const after = await instancesByPod();
    for (const name of ["aws-small-1", "aws-small-2"]) {
      assert.deepEqual(after.get(name)?.map((instance) => [instance.InstanceId, instance.State?.Name]), before.get(name)?.map((instance) => [instance.InstanceId, "running"]));
    }
  });

  it("garbage-collects an instance tagged for this cluster whose pod is gone, and leaves other clusters' alone", async () => {
    const launch = async (cluster: string): Promise<string> => {
      const tags = [
        { Key: TAG.cluster, Value: cluster },
        { Key: TAG.podUid, Value: `no-such-pod-${cluster}` },
        { Key: TAG.namespace, Value: NAMESPACE },
        { Key: TAG.podName, Value: `leaked-${cluster}` },
      ];
      const output = await ec2.send(
        new RunInstancesCommand({ ImageId: imageId, InstanceType: "t3.small", MinCount: 1, MaxCount: 1, TagSpecifications: [{ ResourceType: "instance", Tags: tags }] }),
      );
      return output.Instances?.[0]?.InstanceId ?? assert.fail("moto launched nothing");
    };
    const leaked = await launch(CLUSTER_ID);
    const foreign = await launch("another-cluster");
    const stateOf = async (id: string): Promise<string | undefined> =>
      (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]?.Instances?.[0]?.State?.Name;
    await waitFor(async () => (await stateOf(leaked)) === "terminated", { timeoutMs: 30_000, intervalMs: 500, message: `GC to terminate ${leaked}` });
    assert.equal(await stateOf(foreign), "running");
    await waitFor(() => peerpods.logs().some((line) => JSON.stringify(line).includes(leaked)), { timeoutMs: 5_000, message: "the GC to log the instance it removed" });
    const byPod = await instancesByPod();
    assert.ok(["aws-small-1", "aws-small-2"].every((name) => byPod.get(name)?.[0]?.State?.Name === "running"), "live pods keep their VMs");
  });

  it("never lets the provider credentials out: not in its log, Events, PeerPod records, metrics or any instance's user data", async () => {
    const secrets = Object.values(MOTO_CREDENTIALS);
    // the instances peerpods launched (not the ones the GC test launched by hand)
    const launched = [...(await instancesByPod())].filter(([pod]) => !pod.startsWith("leaked-")).flatMap(([, instances]) => instances);
    const userData = await Promise.all(
      launched.map(async (instance) => {
        const attribute = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instance.InstanceId!, Attribute: "userData" }));
        return Buffer.from(attribute.UserData?.Value ?? "", "base64").toString("utf8");
      }),
    );
    assert.ok(userData.length >= 2 && userData.every((text) => text.startsWith("#cloud-config")), "the instances' user data was read");
    const places = {
      log: readFileSync(peerpods.logFile, "utf8"),
      events: JSON.stringify([...(await core.listNamespacedEvent({ namespace: NAMESPACE })).items, ...(await core.listNamespacedEvent({ namespace: "peerpods-system" })).items]),
      peerPods: JSON.stringify(await peerPodRecords()),
      metrics: await (await fetch(`http://127.0.0.1:${peerpods.metricsPort}/metrics`)).text(),
      userData: userData.join("\n"),
    };
    assert.ok(places.log.includes("VM created") && places.events.includes("VMReady"), "the log and the Events are the real ones");
    const leaks = Object.entries(places).flatMap(([place, text]) => secrets.filter((secret) => text.includes(secret)).map((secret) => `${place}: ${secret.slice(0, 4)}…`));
    assert.deepEqual(leaks, []);
    await agentKeysStayInTheirVm(launched, userData, places);
  });

  /**
   * Each instance's user data holds its own agent key root-only, with a certificate for the name its
   * tag gives; no agent key (nor the CA's) is in the log, Events, PeerPod records or metrics, and the CA key in no VM.
   */
  async function agentKeysStayInTheirVm(launched: Ec2Instance[], userData: string[], places: Record<string, string>): Promise<void> {
    // A key's base64 lines after the first (which every P-256 key shares): whatever escapes a log applies, a leaked key keeps these whole.
    const keyLines = (pem: string): string[] => pem.split("\n").filter((line) => line.length >= 20 && !line.startsWith("-----")).slice(1);
    const caKey = keyLines(readFileSync(join(await localAgentCa(), "ca.key"), "utf8"));
    const vmKeys = userData.flatMap((text, i) => {
      const files = (parse(text) as { write_files: { path: string; permissions: string; content: string }[] }).write_files;
      const file = (name: string) => files.find((f) => f.path.endsWith(`/agent-tls/${name}`)) ?? assert.fail(`no agent-tls/${name} in ${launched[i]!.InstanceId}'s user data`);
      assert.equal(file("tls.key").permissions, "0600");
      const cert = new X509Certificate(Buffer.from(file("tls.crt").content, "base64"));
      const identity = launched[i]!.Tags?.find((tag) => tag.Key === TAG.agentIdentity)?.Value;
      assert.equal(cert.subjectAltName, `URI:urn:peerpods:vm:${identity}`, "the certificate names the instance its tag names");
      const decoded = files.map((f) => Buffer.from(f.content, "base64").toString()).join("\n");
      assert.ok(!caKey.some((line) => decoded.includes(line)), "the CA's key is in no VM");
      return [...keyLines(Buffer.from(file("tls.key").content, "base64").toString()), file("tls.key").content];
    });
    assert.ok(vmKeys.length >= 2 && caKey.length >= 1, "the keys were read");
    const outside = Object.entries(places).filter(([place]) => place !== "userData");
    const keyLeaks = outside.flatMap(([place, text]) => [...vmKeys, ...caKey].filter((secret) => text.includes(secret)).map((secret) => `${place}: ${secret.slice(0, 8)}…`));
    assert.deepEqual(keyLeaks, []);
  }
});

const VM_RESOURCE = "kata.peerpods.io/vm";

/** The sum of a counter's series whose labels include `labels`. */
async function metricSum(counter: typeof awsApiCalls | typeof awsApiRetries, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values
    .filter((value) => Object.entries(labels).every(([key, wanted]) => (value.labels as Record<string, unknown>)[key] === wanted)).reduce((sum, value) => sum + value.value, 0);
}

function awsPeerPod(name: string, cpu: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: { runtimeClassName: "kata-remote", containers: [{ name: "app", image: "busybox", resources: { requests: { cpu, memory: "256Mi" } } }] },
  };
}

/** Ready (the e2e KWOK stages make Ready wait for the readiness gate), with the vm-ready condition as the worker writes it. */
function podReadyWithVm(pod: V1Pod): boolean {
  const conditions = pod.status?.conditions ?? [];
  return (
    conditions.some((c) => c.type === "Ready" && c.status === "True") && conditions.some((c) => c.type === VM_READY_CONDITION && c.status === "True" && c.reason === "VMReady")
  );
}
