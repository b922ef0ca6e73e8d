// Conformance catalogue, group WA: the Workload API client's behaviour on the stream
// (Workload API 4.2, 4.5, 5.2.1, 8), observed on the harness's X.509 port, with every
// Workload API call recorded and asserted on. To show that a response was ignored, each
// test pushes a barrier (a new valid SVID) after it and waits for the barrier to take
// effect; the stream is ordered, so the bad response was handled by then.

import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, test } from "node:test";
import { status } from "@grpc/grpc-js";
import type { IssuedSvid } from "../testing/ca.js";
import {
  asFakeSvid,
  assertEveryCallCarriedHeader,
  Bed,
  callsOf,
  OWN_ID,
  TD,
  waitFor,
} from "../testing/support/conformance-bed.js";

async function withBed(body: (bed: Bed) => Promise<void>): Promise<void> {
  const bed = await Bed.start();
  try {
    await body(bed);
    assertEveryCallCarriedHeader(bed.fake);
    assert.equal(callsOf(bed.fake, "FetchX509Bundles").length, 0, "the source uses FetchX509SVID");
  } finally {
    await bed.stop();
  }
}

function wire(svid: IssuedSvid, bundle: Buffer) {
  return {
    spiffe_id: OWN_ID,
    x509_svid: svid.chainDer,
    x509_svid_key: svid.keyDer,
    bundle,
    hint: "",
  };
}

test("WA-1 re-establishes the stream after the server closes it (SHOULD)", () =>
  withBed(async (bed) => {
    assert.ok(await bed.presents(bed.own));
    const failed = once(bed.harness.source, "error");
    bed.fake.failWith(status.UNAVAILABLE);
    await failed;
    // UNAVAILABLE is not a withdrawal: A is still served while the client reconnects.
    assert.ok(await bed.presents(bed.own));
    bed.fake.failWith(undefined);
    const next = await bed.ca.issue(OWN_ID);
    bed.push(bed.ownResponse({ own: next }));
    await waitFor("SVID B from the new stream", () => bed.presents(next));
    // A retry can come (with full jitter, at once) while the fake still fails: every call
    // before the last was refused, and the last stream is open and healthy.
    const calls = callsOf(bed.fake, "FetchX509SVID");
    assert.ok(calls.length >= 2, `the client called again (${calls.length} calls)`);
    for (const call of calls.slice(0, -1)) assert.equal(call.status, status.UNAVAILABLE);
    assert.equal(calls.at(-1)?.status, undefined, "the last stream is open and healthy");
    assert.equal(bed.fake.openStreamCount("FetchX509SVID"), 1);
  }));

describe("WA-2 discards a response in which a mandatory field has its default value (SHOULD)", () => {
  const variants: Record<string, (valid: ReturnType<typeof wire>) => Record<string, unknown>> = {
    "empty svids": () => ({ svids: [], federated_bundles: {} }),
    "empty spiffe_id": (valid) => ({ svids: [{ ...valid, spiffe_id: "" }] }),
    "empty x509_svid": (valid) => ({ svids: [{ ...valid, x509_svid: Buffer.alloc(0) }] }),
    "empty x509_svid_key": (valid) => ({ svids: [{ ...valid, x509_svid_key: Buffer.alloc(0) }] }),
    "empty bundle": (valid) => ({ svids: [{ ...valid, bundle: Buffer.alloc(0) }] }),
  };
  for (const [variant, corrupt] of Object.entries(variants)) {
    test(`WA-2/${variant}`, () =>
      withBed(async (bed) => {
        const source = bed.harness.source;
        assert.ok(await bed.presents(bed.own));
        const changes: (string | undefined)[] = [];
        let updates = 0;
        source.on("svidChanged", (svid) => changes.push(svid?.leaf.fingerprint256));
        source.on("update", () => {
          updates += 1;
        });
        // Built from another valid SVID, so taking any part of it would show.
        const other = await bed.ca.issue(OWN_ID);
        bed.fake.sendRawX509(corrupt(wire(other, bed.ca.bundleDer())));
        const barrier = await bed.ca.issue(OWN_ID);
        bed.push(bed.ownResponse({ own: barrier }));
        await waitFor("the barrier SVID", () => bed.presents(barrier));
        assert.deepEqual(changes, [barrier.certificates[0]?.fingerprint256], "only the barrier");
        assert.equal(updates, 1, "the bad response produced no update");
        assert.equal(callsOf(bed.fake, "FetchX509SVID").length, 1, "the stream was kept");
      }));
  }
});

test("WA-3 uses the first SVID in the response as the default identity (MUST)", () =>
  withBed(async (bed) => {
    const a = await bed.ca.issue(OWN_ID);
    const secondId = `spiffe://${TD}/second`;
    const b = await bed.ca.issue(secondId);
    const bundle = bed.ca.bundleDer();
    await bed.pushAndWait({
      svids: [asFakeSvid(a, OWN_ID, bundle), asFakeSvid(b, secondId, bundle)],
    });
    assert.ok(await bed.presents(a), "[A, B] presents A");
    await bed.pushAndWait({
      svids: [asFakeSvid(b, secondId, bundle), asFakeSvid(a, OWN_ID, bundle)],
    });
    assert.ok(await bed.presents(b), "[B, A] presents B");
    assert.equal(await bed.presentedId(), secondId);
    // The client role presents the default identity too.
    const outcome = await bed.dialFromLibrary(await bed.ca.issue(`spiffe://${TD}/peer`));
    assert.equal(outcome.accepted, true);
  }));

test("WA-4 stops using SVIDs after the stream returns PermissionDenied (SHOULD)", () =>
  withBed(async (bed) => {
    assert.ok(await bed.presents(bed.own));
    const deniedAt = Date.now();
    bed.fake.failWith(status.PERMISSION_DENIED);
    await waitFor(
      "the X.509 port to stop presenting A",
      async () => (await bed.presented()).length === 0,
      5000,
    );
    assert.ok(Date.now() - deniedAt < 5000);
    const refusal = bed.serverRejections.at(-1) as { code?: string } | undefined;
    assert.equal(refusal?.code, "no-svid");
    // As a client it no longer presents A either: it does not dial at all.
    const dial = await bed.control("POST", "/v1/x509/dial", { address: "127.0.0.1:9" });
    assert.equal(dial.status, 500);
    assert.equal(dial.body.code, "no-svid");
    assert.equal(callsOf(bed.fake, "FetchX509SVID")[0]?.status, status.PERMISSION_DENIED);
  }));
