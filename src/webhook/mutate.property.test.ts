import assert from "node:assert/strict";
import fc from "fast-check";
import fastJsonPatch from "fast-json-patch";
import { ANNOTATION } from "../kube/annotations.js";
import type { Pod, ResourceList } from "../kube/pod.js";
import { HttpError } from "../http/errors.js";
import { silentLogger } from "../log/logger.js";
import { compilePolicy } from "../policy/compiled.js";
import { policySpecSchema } from "../policy/schema.js";
import { admit } from "./admit.js";
import { mutatePod, type OriginalResources } from "./mutate.js";
import { parseAdmissionReview } from "./review.js";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 10_000);
const VM = "kata.peerpods.io/vm";
const STRIPPED = ["cpu", "memory", "nvidia.com/gpu"];

const policy = compilePolicy(
  policySpecSchema.parse({
    instanceTypes: [
      { name: "s", vcpus: 1, memoryMiB: 1024, hourlyCost: 1 },
      { name: "m", vcpus: 4, memoryMiB: 8192, hourlyCost: 4 },
      { name: "g", vcpus: 8, memoryMiB: 32768, gpus: 4, hourlyCost: 40 },
      { name: "xl", vcpus: 64, memoryMiB: 262144, gpus: 8, hourlyCost: 100 },
    ],
  }),
  1,
);

const cpu = fc.oneof(fc.integer({ min: 0, max: 8 }).map(String), fc.integer({ min: 1, max: 8000 }).map((m) => `${m}m`), fc.constantFrom("0.5", "1.5", "250m"));
const memory = fc.oneof(fc.integer({ min: 1, max: 4096 }).map((m) => `${m}Mi`), fc.integer({ min: 1, max: 16 }).map((g) => `${g}Gi`), fc.integer({ min: 1, max: 1e9 }).map(String));
const gpu = fc.integer({ min: 0, max: 2 }).map(String);
const other = fc.constantFrom("1", "2", "10");

const resourceList: fc.Arbitrary<ResourceList> = fc.record(
  { cpu, memory, "nvidia.com/gpu": gpu, "example.com/dongle": other, [VM]: fc.constantFrom("0", "1", "2") },
  { requiredKeys: [] },
);
const resources = fc.record({ requests: resourceList, limits: resourceList }, { requiredKeys: [] });
const containers = (prefix: string, min: number, max: number) =>
  fc.array(fc.record({ resources, restartPolicy: fc.constantFrom(undefined, "Always") }), { minLength: min, maxLength: max }).map((list) =>
    list.map((c, i) => ({ name: `${prefix}-${i}-ünï`, image: "busybox", resources: c.resources, ...(prefix === "init" && c.restartPolicy ? { restartPolicy: c.restartPolicy } : {}) })),
  );

const peerPod: fc.Arbitrary<Pod> = fc.record({ app: containers("app", 1, 6), init: containers("init", 0, 3), gate: fc.boolean() }).map(({ app, init, gate }) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "team", annotations: { owner: "someone" } },
  spec: {
    runtimeClassName: "kata-remote",
    containers: app,
    ...(init.length ? { initContainers: init } : {}),
    ...(gate ? { readinessGates: [{ conditionType: "example.com/other" }] } : {}),
  },
}));

function userValues(pod: Pod): Map<string, string> {
  const values = new Map<string, string>();
  for (const [kind, list] of [["containers", pod.spec.containers], ["initContainers", pod.spec.initContainers ?? []]] as const) {
    for (const c of list) {
      for (const key of ["requests", "limits"] as const) {
        for (const [name, value] of Object.entries(c.resources?.[key] ?? {})) if (STRIPPED.includes(name)) values.set(`${kind}/${c.name}/${key}/${name}`, value);
      }
    }
  }
  return values;
}

function recordedValues(originals: OriginalResources): Map<string, string> {
  const values = new Map<string, string>();
  for (const kind of ["containers", "initContainers"] as const) {
    for (const [name, requirements] of Object.entries(originals[kind] ?? {})) {
      for (const key of ["requests", "limits"] as const) for (const [resource, value] of Object.entries(requirements[key] ?? {})) values.set(`${kind}/${name}/${key}/${resource}`, value);
    }
  }
  return values;
}

describe("mutatePod properties", function () {
  this.timeout(120_000);

  it(`for any peer pod: the patch applies, asks for exactly one VM, keeps every user value, and is idempotent (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(peerPod, (pod) => {
        const result = mutatePod(pod, "team", policy);
        if (result.kind === "deny") {
          assert.ok(result.message.length > 10);
          return;
        }
        assert.equal(result.kind, "patch");
        if (result.kind !== "patch") return;
        const out = fastJsonPatch.applyPatch(structuredClone(pod), result.patch, true, false).newDocument;
        const all = [...out.spec.containers, ...(out.spec.initContainers ?? [])];
        const vmUnits = all.flatMap((c) => [c.resources?.requests?.[VM], c.resources?.limits?.[VM]]).filter((v) => v !== undefined);
        assert.deepEqual(vmUnits, ["1", "1"]);
        assert.equal(out.spec.containers[0]!.resources!.requests![VM], "1");
        for (const c of all) for (const key of ["requests", "limits"] as const) for (const name of STRIPPED) assert.equal(c.resources?.[key]?.[name], undefined);
        const originals = JSON.parse(out.metadata!.annotations![ANNOTATION.originalResources] ?? "{}") as OriginalResources;
        assert.deepEqual(recordedValues(originals), userValues(pod));
        assert.equal(out.metadata!.annotations!.owner, "someone");
        const again = mutatePod(out, "team", policy);
        assert.equal(again.kind, "patch");
        assert.deepEqual(again.kind === "patch" ? again.patch : undefined, []);
      }),
      { numRuns: RUNS },
    );
  });

  it(`answers random JSON with a 4xx or a well-formed response, never a crash (${RUNS} cases)`, () => {
    const review = fc.record({
      apiVersion: fc.oneof(fc.constant("admission.k8s.io/v1"), fc.jsonValue()),
      kind: fc.oneof(fc.constant("AdmissionReview"), fc.jsonValue()),
      request: fc.oneof(
        fc.jsonValue(),
        fc.record({
          uid: fc.oneof(fc.string(), fc.jsonValue()),
          kind: fc.oneof(fc.constant({ group: "", version: "v1", kind: "Pod" }), fc.jsonValue()),
          operation: fc.oneof(fc.constantFrom("CREATE", "UPDATE", "DELETE"), fc.jsonValue()),
          namespace: fc.oneof(fc.string(), fc.jsonValue()),
          object: fc.oneof(peerPod, fc.jsonValue(), fc.record({ spec: fc.record({ containers: fc.array(fc.jsonValue(), { maxLength: 3 }), runtimeClassName: fc.jsonValue() }) })),
        }),
      ),
    });
    fc.assert(
      fc.property(fc.oneof(review, fc.jsonValue()), (body) => {
        let request;
        try {
          request = parseAdmissionReview(body);
        } catch (error) {
          assert.ok(error instanceof HttpError && error.status >= 400 && error.status < 500, String(error));
          return;
        }
        try {
          const { response } = admit(request, policy, silentLogger);
          assert.equal(response.uid, request.uid);
          assert.equal(typeof response.allowed, "boolean");
        } catch (error) {
          assert.fail(`admit threw on a request that passed validation: ${String(error)}\n${JSON.stringify(body).slice(0, 500)}`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
