import type { Instance, InstanceSpec, Provider, ProviderError, Tags } from "../providers/types.js";

/** An in-memory cloud: idempotent by name, VMs become ready (with the echo agent's endpoint) when told. */
export class MemoryProvider implements Provider {
  readonly name = "memory";
  readonly instances = new Map<string, Instance>();
  readonly calls: string[] = [];
  #next = 1;
  failCreate: ProviderError | undefined;

  constructor(private readonly agentEndpoint: string) {}

  async create(spec: InstanceSpec): Promise<Instance> {
    this.calls.push(`create ${spec.name}`);
    if (this.failCreate) throw this.failCreate;
    const existing = [...this.instances.values()].find((i) => i.name === spec.name && i.state !== "terminated");
    if (existing) return existing;
    const instance: Instance = { id: `vm-${this.#next++}`, name: spec.name, state: "pending", ready: false, instanceType: spec.instanceType.name, tags: { ...spec.tags }, createdAt: new Date() };
    this.instances.set(instance.id, instance);
    return instance;
  }
  boot(id: string): void {
    Object.assign(this.instances.get(id)!, { state: "running", ready: true, agentEndpoint: this.agentEndpoint });
  }
  async get(id: string): Promise<Instance | undefined> {
    return this.instances.get(id);
  }
  async list(filter: Tags): Promise<Instance[]> {
    this.calls.push("list");
    return [...this.instances.values()].filter((i) => Object.entries(filter).every(([k, v]) => i.tags[k] === v));
  }
  async delete(id: string): Promise<void> {
    this.calls.push(`delete ${id}`);
    this.instances.delete(id);
  }
  async health() {
    return { healthy: true };
  }
  async close(): Promise<void> {}
}
