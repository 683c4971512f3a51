import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { startInformer } from "../../../src/kube/informer.js";
import { silentLogger } from "../../../src/log/logger.js";

export interface PodMarks<K extends string> {
  /** Per mark, per pod name: `clock()` when a watch event first showed the pod meeting the mark's test. */
  marks: Record<K, Map<string, number>>;
  stop(): Promise<void>;
}

/** Watches a namespace's pods and notes when each first meets each test (e.g. bound, ready), once the watch is synced. */
export async function watchPodMarks<K extends string>(kc: KubeConfig, namespace: string, tests: Record<K, (pod: V1Pod) => boolean>, clock: () => number = () => performance.now()): Promise<PodMarks<K>> {
  const keys = Object.keys(tests) as K[];
  const marks = Object.fromEntries(keys.map((key) => [key, new Map<string, number>()])) as Record<K, Map<string, number>>;
  const seen = (pod: V1Pod): void => {
    const name = pod.metadata!.name!;
    for (const key of keys) if (!marks[key].has(name) && tests[key](pod)) marks[key].set(name, clock());
  };
  const core = kc.makeApiClient(CoreV1Api);
  const watched = startInformer<V1Pod>(kc, `/api/v1/namespaces/${namespace}/pods`, () => core.listNamespacedPod({ namespace }), silentLogger, (informer) => {
    informer.on("add", seen);
    informer.on("update", seen);
  });
  await watched.synced;
  return { marks, stop: () => watched.stop() };
}
