import { objectKey } from "../kube/keys.js";
import type { PeerPod } from "../kube/peerpod.js";

/** Which PeerPod events may call for an action: a new record, a deletion begun, a spec change, or the record gone (status writes are the worker's own). */
export class RecordChanges {
  readonly #signatures = new Map<string, string>();

  /** Records seen, for the start-up log line. */
  get size(): number {
    return this.#signatures.size;
  }

  /** The record's key when the event may call for an action, else undefined. */
  changed(record: PeerPod, deleted: boolean): string | undefined {
    const key = objectKey(record.metadata);
    const signature = deleted ? undefined : `${record.metadata.uid}|${record.metadata.deletionTimestamp ?? ""}|${record.metadata.generation ?? ""}`;
    if (signature === this.#signatures.get(key)) return undefined;
    if (signature === undefined) this.#signatures.delete(key);
    else this.#signatures.set(key, signature);
    return key;
  }
}
