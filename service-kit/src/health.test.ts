import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TestCa } from "spiffe-node/testing";
import { svidHealth } from "./health.js";

describe("svidHealth", () => {
  test("names the SVID and its expiry, or says there is none", async () => {
    const svid = (
      await (await TestCa.create("example.org")).issue("spiffe://example.org/w")
    ).svid();
    assert.deepEqual(svidHealth({ getX509Svid: () => svid }), {
      hasSvid: true,
      spiffeId: "spiffe://example.org/w",
      svidExpiresAt: svid.expiresAt.toISOString(),
    });
    assert.deepEqual(svidHealth({ getX509Svid: () => undefined }), {
      hasSvid: false,
      spiffeId: null,
      svidExpiresAt: null,
    });
  });
});
