import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Backoff, BackoffOptionsError } from "./backoff.js";

describe("Backoff", () => {
  test("ceilings double from initialMs up to maxMs (random = just below 1)", () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.999999);
    const delays = Array.from({ length: 7 }, () => backoff.next());
    assert.deepEqual(delays, [99, 199, 399, 799, 999, 999, 999]);
  });

  test("full jitter: the delay is random * ceiling, down to 0", () => {
    const draws = [0, 0.5, 0.25];
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000 }, () => draws.shift() ?? 0);
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [0, 100, 100]);
  });

  test("reset() starts again from initialMs", () => {
    const backoff = new Backoff({ initialMs: 10, maxMs: 80 }, () => 0.999999);
    for (let i = 0; i < 5; i++) backoff.next();
    backoff.reset();
    assert.equal(backoff.next(), 9);
  });

  test("stays at the cap after very many attempts", () => {
    const backoff = new Backoff({ initialMs: 1, maxMs: 30_000 }, () => 0.999999);
    let last = 0;
    for (let i = 0; i < 5000; i++) last = backoff.next();
    assert.equal(last, 29_999);
  });

  test("recheck(): between one and two first delays, within the cap, schedule untouched", () => {
    const draws = [0, 0.999999, 0.999999];
    const backoff = new Backoff({ initialMs: 100, maxMs: 150 }, () => draws.shift() ?? 0);
    assert.deepEqual([backoff.recheck(), backoff.recheck()], [100, 150]);
    assert.equal(backoff.next(), 99, "the exponential schedule still starts at initialMs");
  });

  test("defaults: 500 ms first, 5 s cap (the SPIRE agent's sync interval)", () => {
    const backoff = new Backoff();
    assert.equal(backoff.initialMs, 500);
    assert.equal(backoff.maxMs, 5_000);
  });

  test("an initialMs above the default cap raises the cap to it", () => {
    const backoff = new Backoff({ initialMs: 8_000 });
    assert.equal(backoff.maxMs, 8_000);
  });

  test("rejects settings that cannot work", () => {
    for (const options of [{ initialMs: 0 }, { initialMs: -1 }, { initialMs: 100, maxMs: 50 }]) {
      assert.throws(() => new Backoff(options), BackoffOptionsError);
    }
  });
});
