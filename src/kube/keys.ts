/** What names a namespaced object (as in its metadata). */
export interface NamespacedName {
  namespace?: string | null;
  name?: string | null;
}

/** `namespace/name`: the key of an object in caches and queues, and its name in logs and messages. */
export function objectKey(object: NamespacedName | undefined): string {
  return `${object?.namespace ?? ""}/${object?.name ?? ""}`;
}
