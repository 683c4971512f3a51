import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { stringify } from "yaml";
import { policyErrors } from "../metrics/admission.js";
import { loadPolicyFile } from "./file.js";
import { defaultPolicy } from "./schema.js";
import { PolicyStore } from "./store.js";

/** Policies an admin might write by mistake, each with the path its error names. */
const INVALID: [string, unknown, RegExp][] = [
  ["not an object", "vmsPerNode: 3", /\(root\)|^$|expected object/i],
  ["a negative vmsPerNode", { nodes: { vmsPerNode: -1 } }, /nodes\.vmsPerNode/],
  ["an unknown strategy", { scheduling: { strategy: "Random" } }, /scheduling\.strategy/],
  ["a type without vCPUs", { instanceTypes: [{ name: "a", vcpus: 0, memoryMiB: 1024 }] }, /instanceTypes\.0\.vcpus/],
  ["two types of one name", { instanceTypes: [{ name: "a", vcpus: 1, memoryMiB: 1024 }, { name: "a", vcpus: 2, memoryMiB: 2048 }] }, /instanceTypes/],
  ["a default type not in the catalog", { defaultInstanceType: "nope" }, /defaultInstanceType/],
  ["an unknown provider", { provider: { name: "teleporter" } }, /provider/],
  ["no runtime class", { runtimeClassNames: [] }, /runtimeClassNames/],
  ["an unknown field (a typo)", { node: { vmsPerNode: 3 } }, /node/],
  ["a string where a number belongs", { limits: { maxVMs: "ten" } }, /limits\.maxVMs/],
];

const policyRejections = async (): Promise<number> => (await policyErrors.get()).values[0]?.value ?? 0;

describe("invalid policies", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "peerpods-policy-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const [name, spec, path] of INVALID) {
    it(`${name}: refused by \`policy validate\` with its path, and the last good policy stays in force`, async () => {
      const file = join(dir, "policy.yaml");
      await writeFile(file, typeof spec === "string" ? spec : stringify({ apiVersion: "peerpods.io/v1alpha1", kind: "PeerPodPolicy", spec }));
      const validated = await loadPolicyFile(file);
      assert.equal(validated.ok, false, "policy validate accepted it");
      if (validated.ok) return;
      assert.ok(validated.errors.some((error) => path.test(`${error.path}: ${error.message}`)), JSON.stringify(validated.errors));

      const logs: { level: number; msg: string; source?: string; generation?: number }[] = [];
      const log = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) });
      const store = new PolicyStore(defaultPolicy(), log);
      const good = store.update({ source: "test", document: { nodes: { vmsPerNode: 7 } } });
      assert.ok(good.ok);
      const changed: unknown[] = [];
      store.on("change", (policy) => changed.push(policy));
      const rejectedBefore = await policyRejections();
      const result = store.update({ source: "cluster", generation: 9, document: typeof spec === "string" ? spec : { spec } });
      assert.equal(result.ok, false);
      assert.equal(store.current, good.policy, "the last good policy is still the one in force");
      assert.equal(store.current.spec.nodes.vmsPerNode, 7);
      assert.equal(changed.length, 0);
      assert.equal((await policyRejections()) - rejectedBefore, 1, "counted once");
      assert.deepEqual(
        logs.filter((line) => line.level >= 50).map(({ msg, source, generation }) => ({ msg, source, generation })),
        [{ msg: "invalid policy rejected; the last good policy stays in force", source: "cluster", generation: 9 }],
        "logged once, with where it came from",
      );
    });
  }
});
