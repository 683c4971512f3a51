import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../log/logger.js";
import { isVmId, listRecords, newVmId, readRecord, writeRecord } from "./records.js";
import type { VmRecord } from "./state.js";

const record = (id: string): VmRecord => ({
  id,
  name: `pp-${id}`,
  instanceType: "small",
  vcpus: 1,
  memoryMiB: 512,
  tags: { a: "b" },
  createdAt: "2026-01-01T00:00:00.000Z",
  pid: 4242,
  accelerator: "tcg",
  machine: "microvm",
  network: "vpc",
  privateIp: "10.224.7.2",
  agentPort: 1024,
});

describe("qemu VM records", () => {
  let vmsDir: string;
  beforeEach(async () => (vmsDir = await mkdtemp(join(tmpdir(), "qemu-records-"))));
  afterEach(() => rm(vmsDir, { recursive: true, force: true }));

  it("names VMs so that only its own ids are taken for VM folders", () => {
    const id = newVmId();
    assert.ok(isVmId(id), id);
    assert.equal(isVmId("../etc"), false);
    assert.equal(isVmId("probe-kvm-microvm"), false);
  });

  it("reads back what it wrote and leaves no temporary file", async () => {
    const id = newVmId();
    const dir = join(vmsDir, id);
    await mkdir(dir);
    await writeRecord(dir, record(id));
    assert.deepEqual(await readRecord(dir), record(id));
    assert.deepEqual(await readdir(dir), ["instance.json"]);
    assert.equal(await readRecord(join(vmsDir, "missing")), undefined);
  });

  it("lists every VM with a record and removes only old folders without one", async () => {
    const [kept, fresh, abandoned] = [newVmId(), newVmId(), newVmId()];
    for (const id of [kept, fresh, abandoned]) await mkdir(join(vmsDir, id));
    await mkdir(join(vmsDir, "not-a-vm"));
    await writeRecord(join(vmsDir, kept), record(kept));
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(join(vmsDir, abandoned), old, old);
    assert.deepEqual((await listRecords(vmsDir, silentLogger)).map((r) => r.id), [kept]);
    assert.deepEqual((await readdir(vmsDir)).sort(), [kept, fresh, "not-a-vm"].sort());
  });

  it("lists nothing when the folder does not exist yet", async () => {
    assert.deepEqual(await listRecords(join(vmsDir, "none"), silentLogger), []);
  });
});
