import assert from "node:assert/strict";
import { ProviderError, TAG, type ClaimSpec, type Instance } from "../../providers/types.js";
import { MemoryCluster, recordedPod, stepsOver } from "../../test-support/memory-cluster.js";
import { MemoryProvider } from "../../test-support/memory-provider.js";
import { claimInstance } from "./claim.js";
import { setFound, type State } from "./step.js";

describe("lifecycle: handing a pool VM to its pod", () => {
  const poolVm: Instance = { id: "pool-1", name: "pool-small-1", state: "running", ready: true, instanceType: "small", tags: { [TAG.pool]: "true" }, createdAt: new Date() };
  let cluster: MemoryCluster;

  const claimed = async (claim: ((id: string, spec: ClaimSpec) => Promise<Instance>) | undefined): Promise<State> => {
    const cloud = Object.assign(new MemoryProvider(""), claim ? { claim } : {});
    const steps = stepsOver(cluster, cloud);
    const state = await recordedPod(cluster, steps, "a");
    setFound(state, poolVm);
    await claimInstance(steps, state);
    return state;
  };

  beforeEach(() => (cluster = new MemoryCluster()));

  it("gives the VM the pod's name, tags and user data, and goes on with what the provider made of it", async () => {
    const asked: ClaimSpec[] = [];
    const state = await claimed(async (id, spec) => {
      asked.push(spec);
      return { ...poolVm, id, name: spec.name, tags: spec.tags };
    });
    assert.equal(asked[0]!.name, "pp-uid-a");
    assert.equal(asked[0]!.tags[TAG.podUid], "uid-a");
    assert.equal(JSON.parse(asked[0]!.userData).podUID, "uid-a");
    assert.deepEqual(state.instance, { kind: "present", state: "running", ready: true, pooled: false });
  });

  it("takes a VM gone meanwhile as absent, for decide to replace it", async () => {
    const state = await claimed(() => Promise.reject(new ProviderError("notFound", "no such VM")));
    assert.deepEqual(state.instance, { kind: "absent" });
  });

  it("refuses with a provider that cannot hand VMs over", async () => {
    await assert.rejects(claimed(undefined), (error: unknown) => error instanceof ProviderError && error.kind === "invalid");
  });
});
