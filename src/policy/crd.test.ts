import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { defaultPolicy, parsePolicy, policySpecSchema, POLICY_GROUP, POLICY_KIND, POLICY_PLURAL, POLICY_VERSION } from "./schema.js";

type Schema = Record<string, unknown>;

const readManifest = (path: string): Schema => parseYaml(readFileSync(new URL(`../../manifests/${path}`, import.meta.url), "utf8")) as Schema;

const crd = readManifest("crds/peerpodpolicies.yaml") as {
  spec: { group: string; scope: string; names: { kind: string; plural: string }; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
};
const version = crd.spec.versions.find((v) => v.name === POLICY_VERSION);
const crdSpecSchema = (version?.schema.openAPIV3Schema.properties as Record<string, Schema> | undefined)?.spec;

/** Rewrites a schema tree bottom-up with `rewrite` applied to every object node. */
function mapSchema(node: unknown, rewrite: (schema: Schema) => Schema): unknown {
  if (Array.isArray(node)) return node.map((item) => mapSchema(item, rewrite));
  if (node === null || typeof node !== "object") return node;
  const children = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, key === "enum" || key === "required" ? value : mapSchema(value, rewrite)]));
  return rewrite(children);
}

/** zod's JSON Schema in the vocabulary of a structural CRD schema. */
function zodAsCrd(schema: Schema): Schema {
  const { $schema: _dialect, default: _default, propertyNames: _keys, additionalProperties, maximum, ...rest } = schema;
  const out: Schema = { ...rest };
  if (typeof maximum === "number" && maximum !== Number.MAX_SAFE_INTEGER) out.maximum = maximum;
  if (additionalProperties !== undefined && additionalProperties !== false) {
    if (Object.keys(additionalProperties as Schema).length === 0) out["x-kubernetes-preserve-unknown-fields"] = true;
    else out.additionalProperties = additionalProperties;
  }
  return out;
}

/** The CRD schema without what only documents or shapes lists (descriptions, list types). */
function crdConstraints(schema: Schema): Schema {
  const { description: _description, "x-kubernetes-list-type": _listType, "x-kubernetes-list-map-keys": _mapKeys, ...rest } = schema;
  return rest;
}

/**
 * The zod schema as the CRD states it: the sim block stays an open object there (peerpods alone
 * validates it), because its latencies are a number or an object, which a structural schema cannot say.
 */
function asCrdStatesIt(schema: Schema): Schema {
  const spec = mapSchema(schema, zodAsCrd) as { properties: { provider: { properties: Record<string, Schema> } } };
  const { sim, ...providers } = spec.properties.provider.properties;
  assert.ok(sim, "the zod schema has a sim block");
  const opaqueSim = { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  return { ...spec, properties: { ...spec.properties, provider: { ...spec.properties.provider, properties: { ...providers, sim: opaqueSim } } } };
}

describe("PeerPodPolicy CRD", () => {
  it("names the group, version, kind and plural peerpods watches", () => {
    assert.equal(crd.spec.group, POLICY_GROUP);
    assert.equal(crd.spec.scope, "Cluster");
    assert.equal(crd.spec.names.kind, POLICY_KIND);
    assert.equal(crd.spec.names.plural, POLICY_PLURAL);
    assert.ok(version, `no version ${POLICY_VERSION}`);
  });

  it("mirrors every field, type, enum, bound, pattern and required list of the zod schema", () => {
    const fromZod = asCrdStatesIt(z.toJSONSchema(policySpecSchema, { io: "input" }) as Schema);
    assert.deepEqual(mapSchema(crdSpecSchema, crdConstraints), fromZod);
  });

  it("keys instance types by name, so the apiserver rejects duplicates as peerpods does", () => {
    const instanceTypes = (crdSpecSchema?.properties as Record<string, Schema>).instanceTypes!;
    assert.equal(instanceTypes["x-kubernetes-list-type"], "map");
    assert.deepEqual(instanceTypes["x-kubernetes-list-map-keys"], ["name"]);
    const duplicate = parsePolicy({ instanceTypes: [{ name: "a", vcpus: 1, memoryMiB: 512 }, { name: "a", vcpus: 2, memoryMiB: 512 }] });
    assert.equal(duplicate.ok, false);
  });

  it("ships a default PeerPodPolicy that spells out exactly the built-in defaults", () => {
    const result = parsePolicy(readManifest("base/policy.yaml"));
    assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
    assert.deepEqual(result.spec, defaultPolicy());
  });
});
