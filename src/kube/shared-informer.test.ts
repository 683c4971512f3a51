import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { SharedHandlers, withoutManagedFields, type ObjectHandlers } from "./shared-informer.js";

const pod = (name: string): V1Pod => ({ metadata: { namespace: "ns", name, resourceVersion: "1" } });

/** Handlers that write down every event as "verb name". */
function recorder(): { seen: string[]; handlers: ObjectHandlers<V1Pod> } {
  const seen: string[] = [];
  const note = (verb: string) => (object: V1Pod) => seen.push(`${verb} ${object.metadata!.name}`);
  return { seen, handlers: { add: note("add"), update: note("update"), delete: note("delete") } };
}

describe("SharedHandlers", () => {
  const failOnError = (error: unknown): never => {
    throw error;
  };

  it("replays the cache as adds to a late subscriber, then delivers live events", () => {
    const shared = new SharedHandlers<V1Pod>(failOnError);
    const late = recorder();
    shared.subscribe(late.handlers, [pod("a"), pod("b")]);
    shared.dispatch("update", pod("a"));
    shared.dispatch("delete", pod("b"));
    assert.deepEqual(late.seen, ["add a", "add b", "update a", "delete b"]);
  });

  it("delivers every event to every subscriber, in subscription order", () => {
    const shared = new SharedHandlers<V1Pod>(failOnError);
    const order: string[] = [];
    shared.subscribe({ add: (p) => order.push(`first ${p.metadata!.name}`) }, []);
    shared.subscribe({ add: (p) => order.push(`second ${p.metadata!.name}`) }, []);
    shared.dispatch("add", pod("a"));
    assert.deepEqual(order, ["first a", "second a"]);
  });

  it("stops delivering after unsubscribe and keeps the other subscribers", () => {
    const shared = new SharedHandlers<V1Pod>(failOnError);
    const leaving = recorder();
    const staying = recorder();
    const unsubscribe = shared.subscribe(leaving.handlers, []);
    shared.subscribe(staying.handlers, []);
    shared.dispatch("add", pod("a"));
    unsubscribe();
    shared.dispatch("update", pod("a"));
    assert.deepEqual(leaving.seen, ["add a"]);
    assert.deepEqual(staying.seen, ["add a", "update a"]);
    assert.equal(shared.size, 1);
  });

  it("gives a subscriber that comes back (a new leader term) the full replay again", () => {
    const shared = new SharedHandlers<V1Pod>(failOnError);
    const cache = [pod("a")];
    const term = recorder();
    const unsubscribe = shared.subscribe(term.handlers, cache);
    unsubscribe();
    cache.push(pod("b"));
    shared.dispatch("add", pod("b"));
    shared.subscribe(term.handlers, cache);
    assert.deepEqual(term.seen, ["add a", "add a", "add b"]);
  });

  it("lets the same handlers subscribe twice and unsubscribe each registration on its own", () => {
    const shared = new SharedHandlers<V1Pod>(failOnError);
    const twice = recorder();
    const first = shared.subscribe(twice.handlers, []);
    shared.subscribe(twice.handlers, []);
    first();
    shared.dispatch("add", pod("a"));
    assert.deepEqual(twice.seen, ["add a"]);
  });

  it("does not deliver the current event again to a subscriber that joined while it was dispatched", () => {
    const shared = new SharedHandlers<V1Pod>(failOnError);
    const cache: V1Pod[] = [];
    const joiner = recorder();
    shared.subscribe({ add: (p) => (cache.push(p), shared.subscribe(joiner.handlers, cache)) }, []);
    shared.dispatch("add", pod("a"));
    assert.deepEqual(joiner.seen, ["add a"]);
  });

  it("skips a subscriber that another one removed during the same event", () => {
    const shared = new SharedHandlers<V1Pod>(failOnError);
    const removed = recorder();
    let unsubscribe = (): void => undefined;
    shared.subscribe({ update: () => unsubscribe() }, []);
    unsubscribe = shared.subscribe(removed.handlers, []);
    shared.dispatch("update", pod("a"));
    assert.deepEqual(removed.seen, []);
  });

  it("reports a throwing handler and still delivers the event to the others", () => {
    const errors: string[] = [];
    const shared = new SharedHandlers<V1Pod>((error, verb, object) => errors.push(`${verb} ${object.metadata!.name}: ${(error as Error).message}`));
    const after = recorder();
    shared.subscribe({ add: () => { throw new Error("boom"); } }, []);
    shared.subscribe(after.handlers, []);
    shared.dispatch("add", pod("a"));
    assert.deepEqual(errors, ["add a: boom"]);
    assert.deepEqual(after.seen, ["add a"]);
  });
});

describe("withoutManagedFields", () => {
  it("drops managedFields and keeps the rest of the object", () => {
    const object: V1Pod = {
      metadata: { name: "a", namespace: "ns", labels: { app: "x" }, managedFields: [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:spec": {} } }] },
      spec: { containers: [{ name: "c" }] },
    };
    const trimmed = withoutManagedFields(object);
    assert.equal(trimmed, object);
    assert.equal(trimmed.metadata?.managedFields, undefined);
    assert.deepEqual(trimmed.metadata?.labels, { app: "x" });
    assert.deepEqual(trimmed.spec, { containers: [{ name: "c" }] });
  });

  it("leaves an object without metadata alone", () => {
    assert.deepEqual(withoutManagedFields({} as V1Pod), {});
  });
});
