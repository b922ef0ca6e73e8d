// HX (catalogue section 8, hardening): a Workload API update with a bad X.509-SVID is
// ignored. Following the suite: serve a good SVID A, push the bad one, check that A is
// still presented, then push a barrier SVID B and check that B (never the bad one)
// arrives. Each refusal must carry the library's exact codes and be counted.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import type { SpiffeError } from "../errors/spiffe-error.js";
import { type IssuedSvid, TestCa } from "../testing/ca.js";
import type { FakeX509Response } from "../testing/fake-workload-api.js";
import { asFakeSvid, Bed, OWN_ID, TD } from "../testing/support/conformance-bed.js";

let bed: Bed;
before(async () => {
  bed = await Bed.start();
});
after(() => bed.stop());

const HOUR_MS = 3_600_000;

interface HxCase {
  id: string;
  what: string;
  /** The response carrying the bad SVID. */
  bad: () => Promise<FakeX509Response>;
  /** The refusal's code, and the code of the rule it broke (its cause), if any. */
  code: string;
  rule: string | undefined;
}

function withSvid(issued: IssuedSvid, spiffeId = OWN_ID): FakeX509Response {
  return { svids: [asFakeSvid(issued, spiffeId, bed.ca.bundleDer())], federatedBundles: {} };
}

const cases: HxCase[] = [
  {
    id: "HX-1",
    what: "an invalid signature",
    bad: async () => {
      const issued = await bed.ca.issue(OWN_ID);
      const chainDer = Buffer.from(issued.chainDer);
      chainDer[chainDer.length - 1] = (chainDer[chainDer.length - 1] ?? 0) ^ 0x01;
      return { svids: [{ ...asFakeSvid(issued, OWN_ID, bed.ca.bundleDer()), chainDer }] };
    },
    code: "untrusted-svid",
    rule: "untrusted",
  },
  {
    id: "HX-2",
    what: "a chain to another CA than the bundle in the same response",
    bad: async () => withSvid(await (await TestCa.create(TD)).issue(OWN_ID)),
    code: "untrusted-svid",
    rule: "untrusted",
  },
  {
    id: "HX-3",
    what: "an expired leaf",
    bad: async () =>
      withSvid(
        await bed.ca.issue(OWN_ID, {
          notBefore: new Date(Date.now() - 2 * HOUR_MS),
          notAfter: new Date(Date.now() - HOUR_MS),
        }),
      ),
    code: "untrusted-svid",
    rule: "expired",
  },
  {
    id: "HX-4",
    what: "a leaf with cA=true",
    bad: async () => withSvid(await bed.ca.issue(OWN_ID, { isCa: true })),
    code: "bad-svid",
    rule: "leaf-is-ca",
  },
  {
    id: "HX-5",
    what: "a leaf with keyCertSign",
    bad: async () =>
      withSvid(
        await bed.ca.issue(OWN_ID, { keyUsage: { digitalSignature: true, keyCertSign: true } }),
      ),
    code: "bad-svid",
    rule: "key-cert-sign",
  },
  {
    id: "HX-6",
    what: "two URI SANs",
    bad: async () => withSvid(await bed.ca.issue(OWN_ID, { uris: [OWN_ID, `${OWN_ID}-second`] })),
    code: "bad-svid",
    rule: "multiple-uri-sans",
  },
  {
    id: "HX-7",
    what: "a non-spiffe:// URI SAN",
    bad: async () => withSvid(await bed.ca.issue("https://test.example.org/hx-7"), OWN_ID),
    code: "bad-svid",
    rule: "invalid-spiffe-id",
  },
  {
    id: "HX-8",
    what: "a private key that does not match the leaf",
    bad: async () => {
      const issued = await bed.ca.issue(OWN_ID);
      const other = await bed.ca.issue(`${OWN_ID}-other-key`);
      return withSvid({ ...issued, keyDer: other.keyDer });
    },
    code: "bad-svid",
    rule: "key-mismatch",
  },
  {
    id: "HX-9",
    what: "a spiffe_id field that differs from the leaf's URI SAN",
    bad: async () => withSvid(await bed.ca.issue(OWN_ID), `${OWN_ID}-claimed`),
    code: "id-mismatch",
    rule: undefined,
  },
];

describe("HX: a Workload API update with a bad X.509-SVID is ignored", () => {
  for (const c of cases) {
    test(`${c.id} ignores an X.509-SVID with ${c.what} (OPT)`, async () => {
      const a = await bed.ca.issue(OWN_ID);
      await bed.pushAndWait(withSvid(a));
      assert.ok(await bed.presents(a), "positive control: A is presented");
      const source = bed.harness.source;
      const before = source.refusedUpdates;

      const refused = once(source, "updateRefused") as Promise<[SpiffeError]>;
      bed.push(await c.bad());
      const [reason] = await refused;
      assert.equal(reason.code, c.code, reason.message);
      assert.equal((reason.cause as { code?: string } | undefined)?.code, c.rule, reason.message);
      assert.equal(source.refusedUpdates, before + 1);
      assert.equal(source.lastRefusal?.reason, reason);
      assert.ok(await bed.presents(a), "A is still presented after the bad update");

      const b = await bed.ca.issue(OWN_ID);
      await bed.pushAndWait(withSvid(b));
      assert.ok(await bed.presents(b), "the barrier B replaced A");
      assert.equal(source.refusedUpdates, before + 1, "the barrier was not refused");
    });
  }
});
