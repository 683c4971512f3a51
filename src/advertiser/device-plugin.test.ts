import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../log/logger.js";
import { pluginClient, startKubeletStub as startKubelet, unary, watchDevices } from "../test-support/kubelet.js";
import { API_VERSION, DevicePlugin, deviceList, KUBELET_SOCKET, SLOT_ANNOTATION, SLOT_ENV, socketName } from "./device-plugin.js";

describe("device plugin over gRPC (unix sockets)", () => {
  let dir: string;
  let resourceName: string;
  let slots: number;
  let healthy: boolean;
  let plugin: DevicePlugin;
  const cleanups: (() => void)[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "peerpods-dp-"));
    resourceName = "kata.peerpods.io/vm";
    slots = 3;
    healthy = true;
    plugin = new DevicePlugin({ dir, resourceName: () => resourceName, devices: () => deviceList(slots, healthy), log: silentLogger, watchIntervalMs: 50 });
  });
  afterEach(async () => {
    cleanups.splice(0).forEach((cleanup) => cleanup());
    await plugin.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("registers, streams devices and their health, and allocates slots", async () => {
    const kubelet = await startKubelet(dir);
    cleanups.push(kubelet.stop);
    await plugin.start();
    const registration = await kubelet.registrations.next();
    assert.deepEqual({ ...registration }, {
      version: API_VERSION,
      endpoint: socketName("kata.peerpods.io/vm"),
      resource_name: "kata.peerpods.io/vm",
      options: { pre_start_required: false, get_preferred_allocation_available: false },
    });

    const client = pluginClient(dir, registration.endpoint);
    cleanups.push(() => client.close());
    assert.deepEqual({ ...(await unary<object>(client, "GetDevicePluginOptions", {})) }, { pre_start_required: false, get_preferred_allocation_available: false });

    const { updates, cancel } = watchDevices(client);
    cleanups.push(cancel);
    assert.deepEqual((await updates.next()).map((d) => [d.ID, d.health]), [["vm-0", "Healthy"], ["vm-1", "Healthy"], ["vm-2", "Healthy"]]);
    healthy = false;
    slots = 2;
    plugin.update();
    assert.deepEqual((await updates.next()).map((d) => [d.ID, d.health]), [["vm-0", "Unhealthy"], ["vm-1", "Unhealthy"]]);

    const allocation = await unary<{ container_responses: { envs: Record<string, string>; annotations: Record<string, string> }[] }>(client, "Allocate", {
      container_requests: [{ devices_ids: ["vm-0"] }, { devices_ids: ["vm-1", "vm-2"] }],
    });
    assert.deepEqual(allocation.container_responses.map((r) => [r.envs[SLOT_ENV], r.annotations[SLOT_ANNOTATION]]), [["vm-0", "vm-0"], ["vm-1,vm-2", "vm-1,vm-2"]]);
  });

  it("waits for a kubelet that is not there yet, and re-registers after a kubelet restart", async () => {
    await plugin.start();
    assert.equal(existsSync(join(dir, socketName(resourceName))), false, "serves nothing before a kubelet is there");
    const first = await startKubelet(dir);
    await first.registrations.next();

    // A restarting kubelet goes away, wipes the folder's sockets, and comes back on a new kubelet.sock.
    first.stop();
    await rm(join(dir, KUBELET_SOCKET), { force: true });
    await rm(join(dir, socketName(resourceName)), { force: true });
    const second = await startKubelet(dir);
    cleanups.push(second.stop);
    const again = await second.registrations.next();
    assert.equal(again.resource_name, resourceName);

    const client = pluginClient(dir, again.endpoint);
    cleanups.push(() => client.close());
    const { updates, cancel } = watchDevices(client);
    cleanups.push(cancel);
    assert.equal((await updates.next()).length, 3);
  });

  it("re-registers under a renamed resource and removes the old socket; stop removes its socket", async () => {
    const kubelet = await startKubelet(dir);
    cleanups.push(kubelet.stop);
    await plugin.start();
    await kubelet.registrations.next();
    resourceName = "example.com/vm";
    const renamed = await kubelet.registrations.next();
    assert.equal(renamed.resource_name, "example.com/vm");
    assert.equal(renamed.endpoint, socketName("example.com/vm"));
    assert.equal(existsSync(join(dir, socketName("kata.peerpods.io/vm"))), false);
    assert.equal(existsSync(join(dir, renamed.endpoint)), true);
    await plugin.stop();
    assert.equal(existsSync(join(dir, renamed.endpoint)), false);
  });
});
