import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { hostname } from "node:os";
import type { Logger } from "../log/logger.js";
import { objectKey } from "./keys.js";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
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
