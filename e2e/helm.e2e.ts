/**
 * The Helm chart (manifests/chart/) with the helm that `npm run cluster:build` builds: its renders
 * match kustomize's (base, daemonset, both overlays, the alert rules), it lints, its render passes
 * the real apiserver's server-side dry run, and install, upgrade and uninstall work in the local
 * cluster. The Deployment's pods cannot run here (KWOK nodes run no containers) and the local
 * apiserver has no Service network, so the webhook that answers is peerpods on the host, as with the
 * local overlay: the chart's MutatingWebhookConfiguration (webhook.url) sends the apiserver to it,
 * and it runs with a token of the chart's ServiceAccount, so the chart's RBAC is what it gets. Install and upgrade do not
 * `--wait`: the local control plane runs no DaemonSet controller, so the hypervisor DaemonSet never
 * reports ready; its object is checked like every other.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import { ANNOTATION } from "../src/kube/annotations.js";
import { cluster } from "./setup.js";
import { expectApiFailure } from "./support/api-errors.js";
import { driftBetween } from "./support/chart-drift.js";
import { CHART_DIR, helm, renderChart } from "./support/helm.js";
import { kubeRequest } from "./support/kube-request.js";
import { applyObjects, loadManifests, LOCAL_OVERLAY_DIR, MANIFESTS_DIR, parseObjects, ResourcePaths } from "./support/manifests.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";
import { freePorts } from "./support/ports.js";
import { createNamespace } from "./support/suite.js";
import { serviceAccountKubeconfig } from "./support/tokens.js";
import { waitFor } from "./support/wait.js";

type Loose = KubernetesObject & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const RELEASE = "peerpods";
const RELEASE_NAMESPACE = "helm-e2e";
const PODS_NAMESPACE = "helm-e2e-pods";

const find = (objects: KubernetesObject[], kind: string, name: string): Loose => {
  const object = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(object, `${kind}/${name}`);
  return object as Loose;
};
const policySpecOf = (objects: KubernetesObject[]): Record<string, unknown> => find(objects, "PeerPodPolicy", "default").spec;

describe("Helm chart: renders what kustomize renders", function () {
  this.timeout(60_000);

  it("defaults: the base plus the node DaemonSet, from the folder and from `helm package`'s archive", async () => {
    const kustomize = [...(await loadManifests(MANIFESTS_DIR)), ...(await loadManifests(join(MANIFESTS_DIR, "daemonset")))];
    assert.deepEqual(driftBetween(await renderChart(), kustomize), []);
    // the chart links kustomize's files; the archive must carry their contents
    const dir = await mkdtemp(join(tmpdir(), "helm-e2e-package-"));
    try {
      await helm(["package", CHART_DIR, "--destination", dir]);
      assert.deepEqual(driftBetween(await renderChart({}, "peerpods-system", join(dir, "peerpods-0.1.0.tgz")), kustomize), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("values for overlays/local: no replica, the webhook on the host, its policy", async () => {
    const local = await loadManifests(LOCAL_OVERLAY_DIR);
    const values = {
      replicas: 0,
      webhook: { url: "https://127.0.0.1:8443/mutate" },
      certs: { mode: "existing", existingSecret: "peerpods-tls", caBundle: "Cg==" },
      policy: policySpecOf(local),
      hypervisor: { enabled: false },
    };
    assert.deepEqual(driftBetween(await renderChart(values), local), []);
  });

  it("values for overlays/aws: the image from a registry, IRSA, cert-manager, its policy", async () => {
    const aws = await loadManifests(join(MANIFESTS_DIR, "overlays", "aws"));
    const [repository, tag] = find(aws, "Deployment", "peerpods").spec.template.spec.containers[0].image.split(/:(?=[^:/]+$)/);
    const values = {
      image: { repository, tag },
      serviceAccount: { annotations: find(aws, "ServiceAccount", "peerpods").metadata?.annotations },
      certs: { mode: "cert-manager" },
      policy: policySpecOf(aws),
      hypervisor: { enabled: false },
    };
    assert.deepEqual(driftBetween(await renderChart(values), aws), []);
  });

  it("monitoring.prometheusRule: a PrometheusRule holding manifests/monitoring/prometheus-rules.yaml", async () => {
    const rules: unknown = parseYaml(await readFile(join(MANIFESTS_DIR, "monitoring", "prometheus-rules.yaml"), "utf8"));
    const rendered = await renderChart({ monitoring: { prometheusRule: true, labels: { release: "prometheus" } } });
    const rule = find(rendered, "PrometheusRule", "peerpods");
    assert.deepEqual(rule.spec, rules);
    assert.equal(rule.metadata?.labels?.release, "prometheus");
  });

  it("provider credentials by Secret reference only (values.schema.json refuses others), and clear errors for bad certificate values", async () => {
    const deployment = find(await renderChart({ provider: { existingSecret: "aws-credentials" } }), "Deployment", "peerpods");
    assert.deepEqual(deployment.spec.template.spec.containers[0].envFrom, [{ secretRef: { name: "aws-credentials" } }]);
    await assert.rejects(renderChart({ certs: { mode: "existing", existingSecret: "tls" } }), /certs\.caBundle is required with certs\.mode existing/);
    await assert.rejects(renderChart({ certs: { mode: "existing", caBundle: "Cg==" } }), /certs\.existingSecret is required/);
    await assert.rejects(renderChart({ certs: { mode: "self" } }), /\/certs\/mode': value must be one of 'helm', 'cert-manager', 'existing'/);
    await assert.rejects(renderChart({ provider: { accessKeyId: "AKIA" } }), /\/provider': additional properties 'accessKeyId' not allowed/);
  });
});

describe("Helm chart in the local cluster: lint, server-side dry run, install, upgrade, uninstall", function () {
  this.timeout(180_000);
  let admin: KubeConfig;
  let core: CoreV1Api;
  let paths: ResourcePaths;
  let setAside: KubernetesObject[] = [];
  let peerpods: Peerpods | undefined;
  let dir: string;
  let noWebhook: string;

  const kubeconfig = (): string => cluster().kubeconfigPath;
  const dryRunCreate = (body: V1Pod): Promise<V1Pod> => core.createNamespacedPod({ namespace: PODS_NAMESPACE, body, dryRun: "All" });
  const exists = async (object: KubernetesObject): Promise<boolean> => (await getIfExists(admin, await paths.of(object))) !== undefined;

  before(async function () {
    admin = cluster().kc;
    core = admin.makeApiClient(CoreV1Api);
    paths = new ResourcePaths(admin);
    dir = await mkdtemp(join(tmpdir(), "helm-e2e-"));
    const rendered = await renderChart({}, RELEASE_NAMESPACE);
    // the CRDs, as Helm installs them when absent: custom resources need them for the dry run
    await applyObjects(admin, rendered.filter((o) => o.kind === "CustomResourceDefinition"));
    setAside = await setAsideClusterObjects(admin, paths, rendered);
    await createNamespace(core, RELEASE_NAMESPACE);
    await createNamespace(core, PODS_NAMESPACE);
  });

  after(async function () {
    this.timeout(90_000);
    await peerpods?.kill();
    await helm(["uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--ignore-not-found", "--wait"], { kubeconfig: kubeconfig() }).catch(() => undefined);
    for (const name of [PODS_NAMESPACE, RELEASE_NAMESPACE]) await core.deleteNamespace({ name }).catch(() => undefined);
    await applyObjects(admin, setAside);
    await rm(dir, { recursive: true, force: true });
  });

  it("helm lint --strict passes with each certificate source", async () => {
    for (const mode of ["helm", "cert-manager"]) await helm(["lint", "--strict", CHART_DIR, "--set", `certs.mode=${mode}`, "--set", "monitoring.prometheusRule=true"]);
    await helm(["lint", "--strict", CHART_DIR, "--set", "certs.mode=existing,certs.existingSecret=tls,certs.caBundle=Cg=="]);
    // lint checks values against values.schema.json (a failing `required` is only a warning to it)
    await assert.rejects(helm(["lint", "--strict", CHART_DIR, "--set", "certs.mode=self"]), /value must be one of 'helm', 'cert-manager', 'existing'/);
  });

  it("helm template passes the apiserver's server-side dry run, and stores nothing", async () => {
    const rendered = await renderChart({}, RELEASE_NAMESPACE);
    const applied = await applyObjects(admin, rendered, { dryRun: true });
    assert.equal(applied.length, rendered.length);
    const deployment = find(applied, "Deployment", "peerpods");
    assert.equal(deployment.metadata?.namespace, RELEASE_NAMESPACE);
    assert.equal(await exists(deployment), false, "a dry run stores nothing");
  });

  it("helm install: the objects, a certificate for the Service signed by the webhook's CA, peer pods refused while nothing serves", async () => {
    // a loopback port nobody listens on: the apiserver must not look the Service's name up on this host
    noWebhook = `https://127.0.0.1:${(await freePorts(1))[0]}/mutate`;
    await helm(["install", RELEASE, CHART_DIR, "--namespace", RELEASE_NAMESPACE, "--timeout", "60s"], {
      kubeconfig: kubeconfig(),
      values: { replicas: 0, policy: policyWith("helm-install"), webhook: { url: noWebhook } },
    });
    const manifest = parseObjects(await helm(["get", "manifest", RELEASE, "--namespace", RELEASE_NAMESPACE], { kubeconfig: kubeconfig() }), "helm get manifest");
    for (const object of manifest) assert.ok(await exists(object), `${object.kind}/${object.metadata?.name} installed`);
    const secret = await core.readNamespacedSecret({ name: "peerpods-tls", namespace: RELEASE_NAMESPACE });
    const webhook = await kubeRequest<Loose>(admin, "GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/peerpods");
    assert.equal(webhook.webhooks[0].clientConfig.caBundle, secret.data!["ca.crt"]);
    const ca = new X509Certificate(Buffer.from(secret.data!["ca.crt"]!, "base64"));
    const serving = new X509Certificate(Buffer.from(secret.data!["tls.crt"]!, "base64"));
    assert.ok(serving.verify(ca.publicKey), "the serving certificate is signed by the webhook's CA");
    assert.equal(serving.checkHost(`peerpods.${RELEASE_NAMESPACE}.svc`), `peerpods.${RELEASE_NAMESPACE}.svc`);
    // failurePolicy Fail: peer pods are refused while no peerpods answers, other pods admitted
    await waitFor(async () => /failed calling webhook "mutate\.peerpods\.io"/.test((await expectApiFailure(dryRunCreate(peerPod("probe")))).message), {
      timeoutMs: 20_000,
      message: "the apiserver to refuse peer pods through the chart's webhook",
    });
    await dryRunCreate(pod("plain"));
  });

  it("helm upgrade to the webhook on the host: it answers, under the policy of the values; a second upgrade's policy takes effect", async () => {
    const account = { namespace: RELEASE_NAMESPACE, name: "peerpods" };
    const token = await serviceAccountKubeconfig(admin, account, join(dir, "peerpods.kubeconfig"), cluster().caFile);
    peerpods = await startPeerpods({ kubeconfig: token, args: ["--parts=webhook"] });
    const secretBefore = await core.readNamespacedSecret({ name: "peerpods-tls", namespace: RELEASE_NAMESPACE });
    await upgrade("helm-first", { mode: "helm" }, noWebhook);
    const secretAfter = await core.readNamespacedSecret({ name: "peerpods-tls", namespace: RELEASE_NAMESPACE });
    assert.deepEqual(secretAfter.data, secretBefore.data, "an upgrade keeps the generated certificate");
    await upgrade("helm-first", { mode: "existing", existingSecret: "peerpods-host-tls", caBundle: peerpods.caBundle }, `${peerpods.webhookUrl}/mutate`);
    await waitForInstanceType("helm-first");
    await upgrade("helm-second", { mode: "existing", existingSecret: "peerpods-host-tls", caBundle: peerpods.caBundle }, `${peerpods.webhookUrl}/mutate`);
    await waitForInstanceType("helm-second");
    const history = JSON.parse(await helm(["history", RELEASE, "--namespace", RELEASE_NAMESPACE, "--output", "json"], { kubeconfig: kubeconfig() })) as { revision: number; status: string }[];
    assert.deepEqual(history.map(({ revision, status }) => `${revision} ${status}`), ["1 superseded", "2 superseded", "3 superseded", "4 deployed"]);
  });

  it("helm uninstall leaves no object of the release behind; the CRDs stay (Helm never deletes crds/)", async () => {
    const manifest = parseObjects(await helm(["get", "manifest", RELEASE, "--namespace", RELEASE_NAMESPACE], { kubeconfig: kubeconfig() }), "helm get manifest");
    await helm(["uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", "--timeout", "60s"], { kubeconfig: kubeconfig() });
    for (const object of manifest) {
      await waitFor(async () => !(await exists(object)), { timeoutMs: 30_000, message: `${object.kind}/${object.metadata?.name} to be deleted` });
    }
    const releaseRecords = await core.listNamespacedSecret({ namespace: RELEASE_NAMESPACE, labelSelector: "owner=helm" });
    assert.deepEqual(releaseRecords.items.map((s) => s.metadata?.name), [], "Helm's release records");
    await waitFor(async () => (await core.listNamespacedPod({ namespace: RELEASE_NAMESPACE })).items.length === 0, { timeoutMs: 30_000, message: "the release's pods to go" });
    for (const crd of ["peerpodpolicies.peerpods.io", "peerpods.peerpods.io"]) {
      await kubeRequest(admin, "GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`);
    }
  });

  async function upgrade(instanceType: string, certs: Record<string, string>, webhookUrl: string): Promise<void> {
    const values = { replicas: 0, policy: policyWith(instanceType), certs, webhook: { url: webhookUrl } };
    await helm(["upgrade", RELEASE, CHART_DIR, "--namespace", RELEASE_NAMESPACE, "--timeout", "60s"], { kubeconfig: kubeconfig(), values });
  }

  /** Waits until a dry-run peer pod comes back from the webhook with `name` as its instance type. */
  async function waitForInstanceType(name: string): Promise<void> {
    let last: string | undefined;
    await waitFor(
      async () => {
        const created = await dryRunCreate(peerPod("probe")).catch(() => undefined);
        last = created?.metadata?.annotations?.[ANNOTATION.instanceType];
        return last === name;
      },
      { timeoutMs: 30_000, message: `the webhook to pick instance type ${name} (last: ${last})` },
    );
  }
});

/** The chart's default policy with one instance type, `name`, so the webhook's choice shows which policy is in force. */
function policyWith(name: string): Record<string, unknown> {
  return { instanceTypes: [{ name, vcpus: 2, memoryMiB: 2048, gpus: 0, hourlyCost: 0.01 }] };
}

const pod = (name: string, runtimeClassName?: string): V1Pod => ({
  metadata: { name },
  spec: { runtimeClassName, containers: [{ name: "app", image: "busybox", resources: { requests: { cpu: "100m", memory: "64Mi" } } }] },
});
const peerPod = (name: string): V1Pod => pod(name, "kata-remote");

/** The object at `path`, or undefined when the apiserver has none. */
async function getIfExists(admin: KubeConfig, path: string): Promise<Loose | undefined> {
  return kubeRequest<Loose>(admin, "GET", path).catch((error: { code?: number }) => (error.code === 404 ? undefined : Promise.reject(error as Error)));
}

/**
 * The cluster is shared by the suites: the cluster-scoped objects the chart would own (RBAC,
 * RuntimeClasses, the policy, the webhook) may exist, applied by others, and Helm refuses to
 * adopt them. Deletes them and returns them (bare, to apply back), except webhook configurations,
 * which suites remove when done.
 */
async function setAsideClusterObjects(admin: KubeConfig, paths: ResourcePaths, rendered: KubernetesObject[]): Promise<KubernetesObject[]> {
  const kept: KubernetesObject[] = [];
  for (const object of rendered.filter((o) => !o.metadata?.namespace && o.kind !== "CustomResourceDefinition")) {
    const path = await paths.of(object);
    const found = await getIfExists(admin, path);
    if (!found) continue;
    await kubeRequest(admin, "DELETE", path);
    if (found.kind === "MutatingWebhookConfiguration") continue;
    const { name, labels, annotations } = found.metadata!;
    const { metadata: _metadata, status: _status, ...rest } = found;
    kept.push({ ...rest, apiVersion: found.apiVersion, kind: found.kind, metadata: { name, labels, annotations } } as KubernetesObject);
  }
  return kept;
}
