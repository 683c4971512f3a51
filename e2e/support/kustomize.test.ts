import assert from "node:assert/strict";
import { join } from "node:path";
import type { KubernetesObject } from "@kubernetes/client-node";
import { parseAwsSettings } from "../../src/providers/aws/settings.js";
import { defaultPolicy, parsePolicy } from "../../src/policy/schema.js";
import { LOCAL_OVERLAY_DIR, loadManifests, MANIFESTS_DIR } from "./manifests.js";
import { transform, unsupportedFields } from "./kustomize.js";

type Loose = KubernetesObject & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const deployment = (name: string, image: string): Loose => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name, namespace: "ns" },
  spec: { replicas: 2, template: { spec: { containers: [{ name: "c", image }] } } },
});

const find = (objects: KubernetesObject[], kind: string, name: string): Loose => {
  const object = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(object, `${kind}/${name}`);
  return object as Loose;
};

describe("kustomize subset of the e2e loader", () => {
  it("applies a JSON 6902 patch to the objects its target names, and only to them", () => {
    const objects = [deployment("a", "img"), deployment("b", "img")];
    const [a, b] = transform(objects, { patches: [{ path: "p.yaml", target: { group: "apps", kind: "Deployment", name: "a" } }] }, () => [
      { op: "replace", path: "/spec/replicas", value: 5 },
    ]) as Loose[];
    assert.equal(a!.spec.replicas, 5);
    assert.equal(b!.spec.replicas, 2);
    assert.equal(objects[0]!.spec.replicas, 2, "inputs untouched");
  });

  it("refuses a patch whose target matches nothing, or that does not apply", () => {
    assert.throws(() => transform([deployment("a", "img")], { patches: [{ path: "p.yaml", target: { kind: "Service" } }] }, () => []), /no object matches target/);
    assert.throws(() => transform([deployment("a", "img")], { patches: [{ path: "p.yaml", target: { kind: "Deployment" } }] }, () => [{ op: "remove", path: "/spec/nothing" }]));
  });

  it("sets replicas by workload name, and refuses an unknown one", () => {
    const [a] = transform([deployment("a", "img")], { replicas: [{ name: "a", count: 0 }] }, () => []) as Loose[];
    assert.equal(a!.spec.replicas, 0);
    assert.throws(() => transform([deployment("a", "img")], { replicas: [{ name: "x", count: 0 }] }, () => []), /no workload named x/);
  });

  it("retags images by name, keeping a registry port apart from the tag", () => {
    const objects = [deployment("a", "peerpods:0.1.0"), deployment("b", "localhost:5000/peerpods:1"), deployment("c", "other:1")];
    const images = [
      { name: "peerpods", newName: "registry.example/peerpods", newTag: "2.0" },
      { name: "localhost:5000/peerpods", newTag: "3" },
    ];
    const result = transform(objects, { images }, () => []) as Loose[];
    assert.deepEqual(
      result.map((o) => o.spec.template.spec.containers[0].image),
      ["registry.example/peerpods:2.0", "localhost:5000/peerpods:3", "other:1"],
    );
  });

  it("names the kustomization fields it does not implement", () => {
    assert.deepEqual(unsupportedFields({ apiVersion: "v", kind: "Kustomization", resources: [], namePrefix: "x-", configMapGenerator: [] }), ["namePrefix", "configMapGenerator"]);
  });
});

describe("manifests/ overlays", () => {
  it("the base installs peerpods as a two-replica Deployment behind a Service-based webhook", async () => {
    const base = await loadManifests(MANIFESTS_DIR);
    assert.equal(find(base, "Deployment", "peerpods").spec.replicas, 2);
    for (const kind of ["Namespace", "Service", "PodDisruptionBudget", "NetworkPolicy", "RuntimeClass", "PeerPodPolicy"]) assert.ok(base.some((o) => o.kind === kind), kind);
    assert.deepEqual(find(base, "MutatingWebhookConfiguration", "peerpods").webhooks[0].clientConfig.service, { name: "peerpods", namespace: "peerpods-system", path: "/mutate", port: 8443 });
  });

  it("the base's RuntimeClasses are the policy's peer-pod classes, each with its own handler, and the webhook sees all of them", async () => {
    const base = await loadManifests(MANIFESTS_DIR);
    const names = defaultPolicy().runtimeClassNames;
    assert.deepEqual(names, ["kata-remote", "peerpods"]);
    assert.deepEqual(find(base, "PeerPodPolicy", "default").spec.runtimeClassNames, names);
    for (const name of names) assert.equal(find(base, "RuntimeClass", name).handler, name);
    const { expression } = find(base, "MutatingWebhookConfiguration", "peerpods").webhooks[0].matchConditions[0];
    for (const name of names) assert.ok(expression.includes(`'${name}'`), `${name} in ${expression}`);
  });

  it("local: no replica in the cluster, the webhook on the host, peer pods on Kata-labelled nodes with the qemu provider", async () => {
    const local = await loadManifests(LOCAL_OVERLAY_DIR);
    assert.equal(find(local, "Deployment", "peerpods").spec.replicas, 0);
    const { clientConfig } = find(local, "MutatingWebhookConfiguration", "peerpods").webhooks[0];
    assert.equal(clientConfig.url, "https://127.0.0.1:8443/mutate");
    assert.equal(clientConfig.service, undefined);
    const policy = parsePolicy(find(local, "PeerPodPolicy", "default"));
    assert.ok(policy.ok, JSON.stringify(!policy.ok && policy.errors));
    assert.deepEqual(policy.spec.nodes.selector.matchLabels, { "katacontainers.io/kata-runtime": "true" });
    assert.equal(policy.spec.provider.name, "qemu");
  });

  it("aws: the image from a registry, IRSA, the CA from cert-manager, and a policy peerpods accepts, aws settings included", async () => {
    const aws = await loadManifests(join(MANIFESTS_DIR, "overlays", "aws"));
    assert.match(find(aws, "Deployment", "peerpods").spec.template.spec.containers[0].image, /^\d+\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/peerpods:/);
    assert.match(find(aws, "ServiceAccount", "peerpods").metadata?.annotations?.["eks.amazonaws.com/role-arn"] ?? "", /^arn:aws:iam::\d+:role\//);
    assert.equal(find(aws, "MutatingWebhookConfiguration", "peerpods").metadata?.annotations?.["cert-manager.io/inject-ca-from"], "peerpods-system/peerpods");
    const certificate = find(aws, "Certificate", "peerpods");
    assert.equal(certificate.spec.secretName, find(aws, "Deployment", "peerpods").spec.template.spec.volumes.find((v: { name: string }) => v.name === "tls").secret.secretName);
    const policy = parsePolicy(find(aws, "PeerPodPolicy", "default"));
    assert.ok(policy.ok, JSON.stringify(!policy.ok && policy.errors));
    assert.equal(policy.spec.provider.name, "aws");
    parseAwsSettings((policy.spec.provider as Record<string, unknown>).aws);
  });
});
