import assert from "node:assert/strict";
import { ProviderError, TAG, type InstanceSpec } from "../types.js";
import { checkRoom, sameVm } from "./capacity.js";
import type { VmRecord } from "./state.js";

const vm = (id: string, overrides: Partial<VmRecord> = {}): VmRecord => ({
  id,
  name: `pp-${id}`,
  instanceType: "small",
  vcpus: 1,
  memoryMiB: 512,
  tags: {},
  createdAt: "2026-01-01T00:00:00.000Z",
  pid: 1,
  accelerator: "tcg",
  machine: "microvm",
  network: "user",
  hostPort: 40000,
  ...overrides,
}) as VmRecord;

const spec = (name: string, podUid?: string, memoryMiB = 512): InstanceSpec => ({
  name,
  instanceType: { name: "small", vcpus: 1, memoryMiB, gpus: 0 },
  userData: "",
  tags: podUid === undefined ? {} : { [TAG.podUid]: podUid },
});

const isQuota = (error: unknown): boolean => error instanceof ProviderError && error.kind === "quota";

describe("qemu sameVm", () => {
  const live = [{ record: vm("a") }, { record: vm("b", { name: "other", tags: { [TAG.podUid]: "u-b" } }) }];

  it("finds the VM a create made before, by name or by pod UID", () => {
    assert.equal(sameVm(live, spec("pp-a"))?.record.id, "a");
    assert.equal(sameVm(live, spec("renamed", "u-b"))?.record.id, "b");
  });

  it("finds nothing for a new pod", () => {
    assert.equal(sameVm(live, spec("pp-c", "u-c")), undefined);
  });
});

describe("qemu checkRoom", () => {
  it("lets a VM in while the host has room for it", () => {
    assert.doesNotThrow(() => checkRoom([vm("a")], spec("pp-b"), { maxVMs: 2, maxMemoryMiB: 1024 }));
  });

  it("refuses with a quota error beyond the VM count or the memory limit", () => {
    assert.throws(() => checkRoom([vm("a"), vm("b")], spec("pp-c"), { maxVMs: 2, maxMemoryMiB: 4096 }), (e) => isQuota(e) && /limit of 2 VMs/.test((e as Error).message));
    assert.throws(() => checkRoom([vm("a")], spec("pp-b", undefined, 1024), { maxVMs: 8, maxMemoryMiB: 1024 }), (e) => isQuota(e) && /512 MiB of 1024 MiB in use, small needs 1024/.test((e as Error).message));
  });
});
