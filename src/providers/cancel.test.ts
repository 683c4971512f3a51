import assert from "node:assert/strict";
import { delay, eitherSignal, untilAborted } from "./cancel.js";

describe("cancelling a wait", () => {
  it("passes the work's outcome through while the signal holds", async () => {
    assert.equal(await untilAborted(Promise.resolve(7), new AbortController().signal), 7);
    await assert.rejects(untilAborted(Promise.reject(new Error("boom")), new AbortController().signal), /boom/);
    assert.equal(await untilAborted(Promise.resolve(7), undefined), 7);
  });

  it("ends the wait with the signal's reason, at once or later, without waiting for the work", async () => {
    const never = new Promise<never>(() => undefined);
    await assert.rejects(untilAborted(never, AbortSignal.abort(new Error("stopped before"))), /stopped before/);
    const controller = new AbortController();
    const waiting = untilAborted(never, controller.signal);
    controller.abort(new Error("stopped while waiting"));
    await assert.rejects(waiting, /stopped while waiting/);
  });

  it("waits, or ends the wait with the signal's reason", async () => {
    const started = Date.now();
    await delay(20, new AbortController().signal);
    assert.ok(Date.now() - started >= 15);
    const cancel = new AbortController();
    const waiting = delay(60_000, cancel.signal);
    cancel.abort(new Error("stopping"));
    await assert.rejects(waiting, /stopping/);
  });

  it("joins a caller's signal with the callee's own", () => {
    const own = new AbortController();
    const caller = new AbortController();
    const alone = eitherSignal(own.signal, undefined);
    const either = eitherSignal(own.signal, caller.signal);
    caller.abort();
    assert.ok(either.aborted);
    assert.ok(!alone.aborted);
    own.abort();
    assert.ok(alone.aborted);
  });
});
