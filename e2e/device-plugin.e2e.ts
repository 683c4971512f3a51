import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { KUBELET_SOCKET, socketName } from "../src/advertiser/device-plugin.js";
import { pluginClient, startKubeletStub, watchDevices, type KubeletStub } from "../src/test-support/kubelet.js";
import { cluster } from "./setup.js";
import { startPeerpods, type Peerpods } from "./support/peerpods.js";

const NODE = "sched-dp-1";
const POOL = "sched-dp.peerpods.io/pool";
const RESOURCE = "kata.peerpods.io/vm";

/** `--advertise=device-plugin`: peerpods as this node's kubelet device plugin, its slots from the real apiserver's node. */
describe("advertiser as a kubelet device plugin (real apiserver, kubelet registration stub)", function () {
  this.timeout(90_000);
  let core: CoreV1Api;
  let dir: string;
  let pluginDir: string;
  let unhealthyFile: string;
  let kubelet: KubeletStub;
  let peerpods: Peerpods | undefined;
  const cleanups: (() => void)[] = [];

  before(async () => {
    core = cluster().kc.makeApiClient(CoreV1Api);
    dir = await mkdtemp(join(tmpdir(), "peerpods-dp-e2e-"));
    pluginDir = join(dir, "device-plugins");
    await mkdir(pluginDir);
    unhealthyFile = join(dir, "cloud-unhealthy");
    const policyFile = join(dir, "policy.yaml");
    await writeFile(
      policyFile,
      stringify({ nodes: { selector: { matchLabels: { [POOL]: "peer" } }, vmsPerNode: 2 }, provider: { name: "sim", sim: { unhealthyFile, inventoryFile: null } } }),
    );
    await cluster().addNodes([{ name: NODE, labels: { [POOL]: "peer" } }]);
    kubelet = await startKubeletStub(pluginDir);
    peerpods = await startPeerpods({
      kubeconfig: cluster().kubeconfigPath,
      args: ["--parts=advertiser", "--advertise=device-plugin", `--node-name=${NODE}`, `--device-plugin-dir=${pluginDir}`, `--policy-file=${policyFile}`],
    });
  });

  after(async () => {
    cleanups.splice(0).forEach((cleanup) => cleanup());
    await peerpods?.stop();
    kubelet?.stop();
    await core.deleteNode({ name: NODE }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("registers, streams the node's slots and their health, re-registers after a kubelet restart, and cleans up", async () => {
    const registration = await kubelet.registrations.next(15_000);
    assert.equal(registration.resource_name, RESOURCE);
    assert.equal(registration.version, "v1beta1");
    const client = pluginClient(pluginDir, registration.endpoint);
    cleanups.push(() => client.close());
    const watch = watchDevices(client);
    cleanups.push(watch.cancel);
    assert.deepEqual((await watch.updates.next()).map((d) => [d.ID, d.health]), [["vm-0", "Healthy"], ["vm-1", "Healthy"]]);

    await core.patchNode({ name: NODE, body: { metadata: { annotations: { "peerpods.io/vms-per-node": "3" } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    assert.equal((await watch.updates.next(15_000)).length, 3, "the node annotation sets the device count");

    await writeFile(unhealthyFile, "sim: the e2e marked the cloud down");
    const down = await watch.updates.next(30_000);
    assert.deepEqual(down.map((d) => d.health), ["Unhealthy", "Unhealthy", "Unhealthy"]);
    await rm(unhealthyFile);
    assert.deepEqual((await watch.updates.next(30_000)).map((d) => d.health), ["Healthy", "Healthy", "Healthy"]);

    const node = await core.readNode({ name: NODE });
    assert.equal(node.status?.capacity?.[RESOURCE], undefined, "device-plugin mode leaves node status to the kubelet");

    // a restarting kubelet wipes the folder's sockets and comes back on a new kubelet.sock
    kubelet.stop();
    await rm(join(pluginDir, KUBELET_SOCKET), { force: true });
    await rm(join(pluginDir, registration.endpoint), { force: true });
    kubelet = await startKubeletStub(pluginDir);
    const again = await kubelet.registrations.next(15_000);
    assert.equal(again.resource_name, RESOURCE);
    assert.ok(existsSync(join(pluginDir, socketName(RESOURCE))));

    await peerpods!.stop();
    peerpods = undefined;
    assert.equal(existsSync(join(pluginDir, socketName(RESOURCE))), false, "its socket is removed at shutdown");
  });
});
