/** Annotation, label and condition names peerpods reads and writes. */
export const ANNOTATION = {
  instanceType: "peerpods.io/instance-type",
  originalResources: "peerpods.io/original-resources",
  vmsPerNode: "peerpods.io/vms-per-node",
  /** On nodes that host peer pods: the policy generation their advertisement follows (a change makes kube-scheduler retry pods the extender turned away). */
  policyGeneration: "peerpods.io/policy-generation",
  /** On nodes that host peer pods: the resource name advertised, so a renamed one is removed even after a restart. */
  advertisedResource: "peerpods.io/advertised-resource",
  /** On a node: when the extender last saw peer-pod capacity come free after turning pods away (a cluster event for kube-scheduler). */
  capacityReleased: "peerpods.io/capacity-released",
  kataMachineType: "io.katacontainers.config.hypervisor.machine_type",
  kataVcpus: "io.katacontainers.config.hypervisor.default_vcpus",
  kataMemory: "io.katacontainers.config.hypervisor.default_memory",
} as const;

/** Pod condition the worker sets True when the pod's VM is ready; the webhook adds it as a readiness gate. */
export const VM_READY_CONDITION = "peerpods.io/vm-ready";
