import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  DescribeSubnetsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  paginateDescribeInstances,
  type EC2Client,
  type Filter,
  type Instance as Ec2Instance,
  type InstanceStatus,
  type RunInstancesCommandInput,
  type Tag,
  type _InstanceType,
} from "@aws-sdk/client-ec2";
import { claimCheck, claimedTags } from "../claim.js";
import { ProviderError, TAG, type CallOptions, type ClaimSpec, type Instance, type InstanceSpec, type Provider, type ProviderHealth, type ProviderOptions, type Tags, taggedPod } from "../types.js";
import { errorCode, toProviderError, ZONE_CAPACITY_CODES } from "./errors.js";
import { isLive, toInstance } from "./instances.js";
import { clientToken, subnetCandidates, type Subnet } from "./placement.js";
import type { AwsSettings } from "./settings.js";
import { cloudInitUserData } from "./userdata.js";

/** Every EC2 state but `terminated`: what `list` reports. */
const EXISTING_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"];
/** How many terminated instances one VM's token sequence may run into before giving up. */
const MAX_TOKEN_GENERATIONS = 8;
/** DescribeInstanceStatus takes at most 100 ids per call. */
const STATUS_BATCH = 100;
/** How long EC2's DescribeInstances may not yet know an instance RunInstances just returned. */
const CONSISTENCY_WINDOW_MS = 60_000;

/** EC2 as a peerpods cloud; see docs/providers.md "AWS provider" for settings and IAM permissions. */
export class AwsProvider implements Provider {
  readonly name = "aws";
  #subnets: Promise<Subnet[]> | undefined;
  readonly #rootDevices = new Map<string, Promise<string>>();
  /** Instances launched by this process, kept while EC2's reads may still miss them (eventual consistency). */
  readonly #recentLaunches = new Map<string, { instance: Instance; at: number }>();

  constructor(
    private readonly client: EC2Client,
    private readonly settings: AwsSettings,
    private readonly options: ProviderOptions,
  ) {}

  get readyPollMs(): number {
    return this.settings.readyPollMs;
  }

  async create(spec: InstanceSpec, options?: CallOptions): Promise<Instance> {
    const signal = options?.signal;
    const existing = await this.#findExisting(spec, signal);
    if (existing) return this.#withStatus([existing], signal).then(([instance]) => instance as Instance);
    const input = await this.#runInput(spec);
    let zoneError: unknown;
    for (const subnet of await this.#subnetsFor(spec)) {
      try {
        const instance = await this.#run(spec.name, { ...input, SubnetId: subnet?.id }, signal);
        this.options.log.info(
          { pod: taggedPod(spec.tags), instanceId: instance.id, instanceType: instance.instanceType, subnet: subnet?.id, zone: instance.zone },
          "instance launched",
        );
        return instance;
      } catch (error) {
        if (!ZONE_CAPACITY_CODES.has(errorCode(error))) throw toProviderError(error, "RunInstances");
        this.options.log.warn({ pod: taggedPod(spec.tags), subnet: subnet?.id, code: errorCode(error) }, "no capacity in this zone, trying the next subnet");
        zoneError = error;
      }
    }
    throw toProviderError(zoneError, "RunInstances");
  }

  async get(id: string, options?: CallOptions): Promise<Instance | undefined> {
    try {
      const output = await this.client.send(new DescribeInstancesCommand({ InstanceIds: [id] }), { abortSignal: options?.signal });
      const found = output.Reservations?.flatMap((reservation) => reservation.Instances ?? []) ?? [];
      const [instance] = await this.#withStatus(found.filter((candidate) => candidate.InstanceId === id), options?.signal);
      return instance ?? this.#recentLaunch(id);
    } catch (error) {
      const mapped = toProviderError(error, "DescribeInstances");
      if (mapped.kind === "notFound") return this.#recentLaunch(id);
      throw mapped;
    }
  }

  async list(tagFilter: Tags, options?: CallOptions): Promise<Instance[]> {
    const filters: Filter[] = [...tagFilters(tagFilter), { Name: "instance-state-name", Values: EXISTING_STATES }];
    return this.#withStatus(await this.#describe(filters, options?.signal), options?.signal);
  }

  async delete(id: string, options?: CallOptions): Promise<void> {
    try {
      this.#recentLaunches.delete(id);
      await this.client.send(new TerminateInstancesCommand({ InstanceIds: [id] }), { abortSignal: options?.signal });
      this.options.log.info({ instanceId: id }, "instance terminated");
    } catch (error) {
      const mapped = toProviderError(error, "TerminateInstances");
      if (mapped.kind !== "notFound") throw mapped;
    }
  }

  /**
   * Retags a pool instance for its pod (the pod's tags first, then the pool tag goes, so a crash in
   * between leaves it marked as pool and the claim is repeated). EC2 cannot change the user data of
   * a running instance: the pod's data reaches it through the Kata agent when the shim attaches.
   */
  async claim(id: string, claim: ClaimSpec, options?: CallOptions): Promise<Instance> {
    const { instance: current, owned } = claimCheck(id, await this.get(id, options), claim);
    if (owned) return current;
    const tags = { ...claim.tags, Name: claim.name };
    try {
      await this.client.send(new CreateTagsCommand({ Resources: [id], Tags: toTagList(tags) }), { abortSignal: options?.signal });
      await this.client.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: TAG.pool }] }), { abortSignal: options?.signal });
    } catch (error) {
      throw toProviderError(error, "CreateTags/DeleteTags");
    }
    this.options.log.info({ pod: taggedPod(claim.tags), instanceId: id }, "pool instance claimed");
    return { ...current, name: claim.name, tags: claimedTags(current.tags, tags) };
  }

  async health(): Promise<ProviderHealth> {
    try {
      const output = await this.client.send(new DescribeAvailabilityZonesCommand({}), {
        abortSignal: AbortSignal.timeout(this.settings.healthTimeoutMs),
      });
      const available = output.AvailabilityZones?.filter((zone) => zone.State === "available").length ?? 0;
      if (available === 0) return { healthy: false, message: `no available zone in ${this.settings.region}` };
      return { healthy: true };
    } catch (error) {
      return { healthy: false, message: toProviderError(error, "DescribeAvailabilityZones").message };
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** The live instance a previous create made for this VM, found by its pod-UID (or name) tag. */
  async #findExisting(spec: InstanceSpec, signal: AbortSignal | undefined): Promise<Ec2Instance | undefined> {
    const podUid = spec.tags[TAG.podUid];
    const identity: Tags = podUid ? { [TAG.podUid]: podUid } : { Name: spec.name };
    const filters = [...tagFilters({ [TAG.cluster]: this.options.clusterId, ...identity }), { Name: "instance-state-name", Values: ["pending", "running"] }];
    const live = (await this.#describe(filters, signal)).filter(isLive);
    return live.sort((a, b) => (a.LaunchTime?.getTime() ?? 0) - (b.LaunchTime?.getTime() ?? 0))[0];
  }

  /**
   * RunInstances under a deterministic token, so a retry after a lost response (or a restart)
   * returns the same instance. When EC2 says the token's instance is already terminated, the next
   * token in the same fixed sequence is used: a restart walks the same sequence to the same VM.
   */
  async #run(name: string, input: RunInstancesCommandInput, signal: AbortSignal | undefined): Promise<Instance> {
    for (let generation = 0; generation < MAX_TOKEN_GENERATIONS; generation++) {
      const token = clientToken(this.options.clusterId, name, input.SubnetId, generation);
      try {
        const output = await this.client.send(new RunInstancesCommand({ ...input, ClientToken: token }), { abortSignal: signal });
        const instance = output.Instances?.[0];
        if (!instance) throw new ProviderError("retryable", "RunInstances: EC2 returned no instance");
        if (isLive(instance)) {
          const launched = toInstance(instance, { agentPort: this.settings.agentPort });
          this.#recentLaunches.set(launched.id, { instance: launched, at: Date.now() });
          return launched;
        }
      } catch (error) {
        if (errorCode(error) !== "IdempotentInstanceTerminated") throw error;
      }
    }
    throw new ProviderError("retryable", `RunInstances: every token for ${name} names a terminated instance`);
  }

  async #runInput(spec: InstanceSpec): Promise<RunInstancesCommandInput> {
    const imageId = spec.image ?? this.settings.imageId;
    if (!imageId.startsWith("ami-")) throw new ProviderError("invalid", `image "${imageId}" is not an AMI id`);
    let userData: string;
    try {
      userData = cloudInitUserData(spec.userData, this.settings.agentConfigPath, spec.agentTls);
    } catch (error) {
      throw new ProviderError("invalid", (error as Error).message, { cause: error });
    }
    const tags = toTagList(this.#tagsFor(spec));
    const { securityGroupIds, keyName, instanceProfile, rootVolumeGiB } = this.settings;
    return {
      ImageId: imageId,
      InstanceType: spec.instanceType.name as _InstanceType,
      MinCount: 1,
      MaxCount: 1,
      UserData: userData,
      TagSpecifications: [
        { ResourceType: "instance", Tags: tags },
        { ResourceType: "volume", Tags: tags },
      ],
      MetadataOptions: { HttpTokens: "required" },
      ...(spec.zone !== undefined && this.settings.subnetIds.length === 0 && { Placement: { AvailabilityZone: spec.zone } }),
      ...(securityGroupIds.length > 0 && { SecurityGroupIds: securityGroupIds }),
      ...(keyName !== undefined && { KeyName: keyName }),
      ...(instanceProfile !== undefined && {
        IamInstanceProfile: instanceProfile.startsWith("arn:") ? { Arn: instanceProfile } : { Name: instanceProfile },
      }),
      ...(rootVolumeGiB !== undefined && {
        BlockDeviceMappings: [
          { DeviceName: await this.#rootDevice(imageId), Ebs: { VolumeSize: rootVolumeGiB, VolumeType: "gp3", DeleteOnTermination: true } },
        ],
      }),
    };
  }

  #tagsFor(spec: InstanceSpec): Tags {
    return {
      ...this.settings.extraTags,
      ...spec.tags,
      [TAG.cluster]: this.options.clusterId,
      [TAG.instanceType]: spec.instanceType.name,
      Name: spec.name,
    };
  }

  /** Subnets to try in order; `[undefined]` lets EC2 choose when no subnets are configured. */
  async #subnetsFor(spec: InstanceSpec): Promise<(Subnet | undefined)[]> {
    if (this.settings.subnetIds.length === 0) return [undefined];
    const subnets = await this.#knownSubnets();
    const zones = spec.zone !== undefined ? [spec.zone] : spec.instanceType.zones;
    const candidates = subnetCandidates(subnets, zones, spec.name);
    if (candidates.length === 0) {
      const where = subnets.map((subnet) => `${subnet.id} in ${subnet.zone}`).join(", ");
      throw new ProviderError("invalid", `no configured subnet is in a zone where ${spec.instanceType.name} may run (${zones?.join(", ")}); subnets: ${where}`);
    }
    return candidates;
  }

  /** An instance launched moments ago that EC2 does not list yet: as RunInstances described it. */
  #recentLaunch(id: string): Instance | undefined {
    const now = Date.now();
    for (const [launchedId, { at }] of this.#recentLaunches) if (now - at > CONSISTENCY_WINDOW_MS) this.#recentLaunches.delete(launchedId);
    return this.#recentLaunches.get(id)?.instance;
  }

  /** The configured subnets' zones, looked up once (and again after a failed lookup). */
  #knownSubnets(): Promise<Subnet[]> {
    this.#subnets ??= this.client
      .send(new DescribeSubnetsCommand({ SubnetIds: this.settings.subnetIds }))
      .then((output) => {
        const zoneById = new Map(output.Subnets?.map((subnet) => [subnet.SubnetId, subnet.AvailabilityZone]));
        return this.settings.subnetIds.map((id) => {
          const zone = zoneById.get(id);
          if (zone === undefined) throw new ProviderError("invalid", `subnet ${id} was not found in ${this.settings.region}`);
          return { id, zone };
        });
      })
      .catch((error: unknown) => {
        this.#subnets = undefined;
        throw toProviderError(error, "DescribeSubnets");
      });
    return this.#subnets;
  }

  /** The image's root device name, needed to size the root volume; looked up once per image. */
  #rootDevice(imageId: string): Promise<string> {
    let device = this.#rootDevices.get(imageId);
    if (!device) {
      device = this.client
        .send(new DescribeImagesCommand({ ImageIds: [imageId] }))
        .then((output) => {
          const name = output.Images?.[0]?.RootDeviceName;
          if (name === undefined) throw new ProviderError("invalid", `image ${imageId} was not found or has no root device`);
          return name;
        })
        .catch((error: unknown) => {
          this.#rootDevices.delete(imageId);
          throw toProviderError(error, "DescribeImages");
        });
      this.#rootDevices.set(imageId, device);
    }
    return device;
  }

  async #describe(filters: Filter[], signal: AbortSignal | undefined): Promise<Ec2Instance[]> {
    const instances: Ec2Instance[] = [];
    try {
      const pages = paginateDescribeInstances({ client: this.client, pageSize: this.settings.pageSize }, { Filters: filters });
      for await (const page of pages) {
        // the paginator takes no signal: a cancelled listing ends between pages
        signal?.throwIfAborted();
        for (const reservation of page.Reservations ?? []) instances.push(...(reservation.Instances ?? []));
      }
    } catch (error) {
      throw toProviderError(error, "DescribeInstances");
    }
    return instances;
  }

  /** Maps instances, with EC2 status checks for the running ones when readiness needs them. */
  async #withStatus(instances: Ec2Instance[], signal: AbortSignal | undefined): Promise<Instance[]> {
    const statuses = new Map<string, InstanceStatus>();
    const running = this.settings.statusChecks
      ? instances.filter((instance) => instance.State?.Name === "running").map((instance) => instance.InstanceId ?? "")
      : [];
    try {
      for (let start = 0; start < running.length; start += STATUS_BATCH) {
        const output = await this.client.send(new DescribeInstanceStatusCommand({ InstanceIds: running.slice(start, start + STATUS_BATCH) }), { abortSignal: signal });
        for (const status of output.InstanceStatuses ?? []) if (status.InstanceId) statuses.set(status.InstanceId, status);
      }
    } catch (error) {
      throw toProviderError(error, "DescribeInstanceStatus");
    }
    return instances.map((instance) => {
      const status = statuses.get(instance.InstanceId ?? "");
      return toInstance(instance, { agentPort: this.settings.agentPort, ...(status && { status }) });
    });
  }
}

function tagFilters(tags: Tags): Filter[] {
  return Object.entries(tags).map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] }));
}

function toTagList(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}
