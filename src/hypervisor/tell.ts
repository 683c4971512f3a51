import { eventTarget, POD, type EventRecorder, type EventType } from "../kube/events.js";

/** The pod behind a sandbox: `namespace/name` (`?` for what the shim did not say) and, once the cluster has shown it, its uid and resourceVersion. */
export interface SandboxPod {
  pod: string;
  podUID?: string;
  podResourceVersion?: string;
}

/** Records an Event on a sandbox's pod. */
export type Tell = (who: SandboxPod, type: EventType, reason: string, message: string) => void;

/** Events on the sandbox's pod; none without a cluster, or when the shim did not say which pod. */
export function podEvents(events: EventRecorder | undefined): Tell {
  return (who, type, reason, message) => {
    const [namespace, name] = who.pod.split("/");
    if (!events || !namespace || !name || namespace === "?" || name === "?") return;
    events.record(eventTarget(POD, { namespace, name, uid: who.podUID, resourceVersion: who.podResourceVersion }), type, reason, message);
  };
}
