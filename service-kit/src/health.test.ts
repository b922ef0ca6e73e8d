import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SpiffeError } from "spiffe-node";
import { TestCa } from "spiffe-node/testing";
import { svidHealth } from "./health.js";

describe("svidHealth", () => {
  test("names the SVID and its expiry, or says there is none", async () => {
    const svid = (
      await (await TestCa.create("example.org")).issue("spiffe://example.org/w")
    ).svid();
    const none = { refusedUpdates: 0, lastRefusal: undefined };
    assert.deepEqual(svidHealth({ getX509Svid: () => svid, ...none }), {
      hasSvid: true,
      spiffeId: "spiffe://example.org/w",
      svidExpiresAt: svid.expiresAt.toISOString(),
      refusedSvidUpdates: { count: 0, last: null },
    });
    assert.deepEqual(svidHealth({ getX509Svid: () => undefined, ...none }), {
      hasSvid: false,
      spiffeId: null,
      svidExpiresAt: null,
      refusedSvidUpdates: { count: 0, last: null },
    });
  });

  test("reports the refused updates: the count, and the latest with its broken rule", () => {
    const at = new Date("2026-01-02T03:04:05Z");
    const rule = new SpiffeError("expired", "the leaf expired");
    const reason = new SpiffeError("untrusted-svid", "SVID #0 fails verification", {
      cause: rule,
    });
    const health = svidHealth({
      getX509Svid: () => undefined,
      refusedUpdates: 3,
      lastRefusal: { at, reason },
    });
    assert.deepEqual(health.refusedSvidUpdates, {
      count: 3,
      last: {
        at: "2026-01-02T03:04:05.000Z",
        code: "untrusted-svid",
        rule: "expired",
        reason: "SVID #0 fails verification",
      },
    });
    const malformed = new SpiffeError("empty-field", "SVID #0 has empty mandatory field(s)");
    const withoutRule = svidHealth({
      getX509Svid: () => undefined,
      refusedUpdates: 1,
      lastRefusal: { at, reason: malformed },
    });
    assert.equal(withoutRule.refusedSvidUpdates.last?.rule, null);
  });
});
