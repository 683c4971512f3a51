import assert from "node:assert/strict";
import { schedulerConfiguration } from "./scheduler-config.js";

describe("schedulerConfiguration", () => {
  it("without a base: this cluster's kubeconfig, leader election off, the scheduler's own QPS", () => {
    assert.deepEqual(schedulerConfiguration(undefined, { kubeconfig: "/tmp/kc" }), {
      apiVersion: "kubescheduler.config.k8s.io/v1",
      kind: "KubeSchedulerConfiguration",
      clientConnection: { kubeconfig: "/tmp/kc" },
      leaderElection: { leaderElect: false },
    });
  });

  it("keeps the given profiles, extenders and connection settings, and overrides only what the local cluster needs", () => {
    const base = {
      apiVersion: "kubescheduler.config.k8s.io/v1",
      kind: "KubeSchedulerConfiguration",
      clientConnection: { kubeconfig: "/etc/kubernetes/scheduler.conf", contentType: "application/vnd.kubernetes.protobuf", qps: 50 },
      leaderElection: { leaderElect: true, resourceNamespace: "kube-system" },
      extenders: [{ urlPrefix: "https://peerpods:8444", filterVerb: "filter", managedResources: [{ name: "kata.peerpods.io/vm" }] }],
    };
    const merged = schedulerConfiguration(base, { kubeconfig: "/tmp/kc", qps: 500 });
    assert.deepEqual(merged, {
      ...base,
      clientConnection: { kubeconfig: "/tmp/kc", contentType: "application/vnd.kubernetes.protobuf", qps: 500, burst: 1000 },
      leaderElection: { leaderElect: false, resourceNamespace: "kube-system" },
    });
    assert.equal(base.clientConnection.kubeconfig, "/etc/kubernetes/scheduler.conf", "the base is not modified");
  });

  it("refuses a file that is not a KubeSchedulerConfiguration", () => {
    assert.throws(() => schedulerConfiguration({ kind: "Deployment" }, { kubeconfig: "/tmp/kc" }), /expected a KubeSchedulerConfiguration, got kind Deployment/);
  });
});
