import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CoalescedCall } from "./coalesce.js";

/** A call whose runs the test settles by hand. */
function manualCall<T>() {
  const pending: { resolve: (value: T) => void; reject: (error: Error) => void }[] = [];
  const call = new CoalescedCall<T>(
    () =>
      new Promise<T>((resolve, reject) => {
        pending.push({ resolve, reject });
      }),
  );
  return { call, pending };
}

describe("CoalescedCall", () => {
  it("gives callers who ask while a run is in flight that run's value", async () => {
    const { call, pending } = manualCall<object>();
    const outcomes = [call.run(), call.run(), call.run()];
    assert.equal(pending.length, 1, "one run for three callers");
    const value = {};
    pending[0]?.resolve(value);
    for (const outcome of await Promise.all(outcomes)) assert.equal(outcome, value);
    assert.deepEqual([call.runs, call.joined], [1, 2]);
  });

  it("gives them that run's error too", async () => {
    const { call, pending } = manualCall<string>();
    const outcomes = [call.run(), call.run()];
    const error = new Error("quotes service unavailable");
    pending[0]?.reject(error);
    for (const outcome of await Promise.allSettled(outcomes)) {
      assert.deepEqual(outcome, { status: "rejected", reason: error });
    }
    assert.equal(pending.length, 1);
  });

  it("starts a new run for a caller who asks once the run has settled", async () => {
    const { call, pending } = manualCall<number>();
    const first = call.run();
    pending[0]?.resolve(1);
    assert.equal(await first, 1);
    const second = call.run();
    assert.equal(pending.length, 2, "a new run, not the settled one");
    pending[1]?.resolve(2);
    assert.equal(await second, 2);
    assert.deepEqual([call.runs, call.joined], [2, 0]);
  });

  it("never hands a settled outcome to a caller reacting to it", async () => {
    const { call, pending } = manualCall<number>();
    // Asked from the very callback that receives the first outcome: the first run is
    // over by then, so this caller must get a run of its own.
    const askedAfter = call.run().then(() => call.run());
    pending[0]?.resolve(1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pending.length, 2);
    pending[1]?.resolve(2);
    assert.equal(await askedAfter, 2);
  });

  it("shares a synchronous throw as a rejection, then runs again", async () => {
    let calls = 0;
    const call = new CoalescedCall<string>(() => {
      calls += 1;
      if (calls === 1) throw new Error("thrown at once");
      return Promise.resolve("fine");
    });
    await assert.rejects(call.run(), /thrown at once/);
    assert.equal(await call.run(), "fine");
    assert.equal(calls, 2);
  });
});
