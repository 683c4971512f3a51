import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { hostname } from "node:os";
import type { Logger } from "../log/logger.js";
import { objectKey } from "./keys.js";

/** An Event's involvedObject. */
export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

/** What kind of object an Event is about (objects in a list carry no apiVersion/kind of their own). */
export interface ObjectKind {
  apiVersion: string;
  kind: string;
}

export const POD: ObjectKind = { apiVersion: "v1", kind: "Pod" };

/** Metadata of the object as far as it is known; fields the cluster did not give are left out. */
export interface ObjectIdentity {
  name: string;
  namespace?: string | undefined;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
}

/**
 * The involvedObject of an Event about an object: every part builds it here. `kubectl describe`
 * finds an object's Events by involvedObject kind, name, namespace and uid, so an Event without
 * the uid of an object the cluster has never shows there: pass it whenever it is known.
 */
export function eventTarget(kind: ObjectKind, object: ObjectIdentity): EventTarget {
  const { name, namespace, uid, resourceVersion } = object;
  return { ...kind, name, ...(namespace && { namespace }), ...(uid && { uid }), ...(resourceVersion && { resourceVersion }) };
}

export type EventType = "Normal" | "Warning";

export interface EventRecorder {
  record(target: EventTarget, type: EventType, reason: string, message: string): void;
}

/** Writes core/v1 Events as `peerpods`; failures are logged, never thrown (an Event is best effort). */
export function eventRecorder(kc: KubeConfig, log: Logger, component = "peerpods"): EventRecorder {
  const core = kc.makeApiClient(CoreV1Api);
  const instance = hostname();
  return {
    record(target, type, reason, message) {
      const namespace = target.namespace || "default";
      const now = new Date();
      core
        .createNamespacedEvent({
          namespace,
          body: {
            metadata: { generateName: `${target.name}.`, namespace },
            involvedObject: { ...target, namespace: target.namespace },
            type,
            reason,
            message: message.slice(0, 1024),
            source: { component, host: instance },
            reportingComponent: component,
            reportingInstance: instance,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        })
        .catch((error: unknown) => log.warn({ err: error, reason, object: objectKey({ namespace, name: target.name }) }, "could not record event"));
    },
  };
}
