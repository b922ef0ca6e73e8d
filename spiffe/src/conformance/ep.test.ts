// Conformance catalogue, group EP: the Workload Endpoint (Workload Endpoint 3, 4, 6),
// with the harness run as its own process, as the public suite runs it: it gets nothing
// but SPIFFE_ENDPOINT_SOCKET. Every Workload API call is recorded by the fake agent.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { after, before, describe, test } from "node:test";
import { status } from "@grpc/grpc-js";
import { TestCa } from "../testing/ca.js";
import { FakeWorkloadApi } from "../testing/fake-workload-api.js";
import {
  asFakeSvid,
  assertEveryCallCarriedHeader,
  callsOf,
  OWN_ID,
  TD,
} from "../testing/support/conformance-bed.js";
import { HarnessProcess } from "../testing/support/harness-process.js";

let ca: TestCa;
before(async () => {
  ca = await TestCa.create(TD);
});

async function startFake(t: TestContext, options: { tcp?: boolean; socketPath?: string } = {}) {
  const fake = await FakeWorkloadApi.start(options);
  t.after(() => fake.stop());
  fake.setX509({ svids: [asFakeSvid(await ca.issue(OWN_ID), OWN_ID, ca.bundleDer())] });
  return fake;
}

function startHarness(t: TestContext, endpoint: string): HarnessProcess {
  const harness = HarnessProcess.start(endpoint);
  t.after(() => harness.stop());
  return harness;
}

/** EP-5/EP-6: retried with backoff, not in a tight loop (< 20 calls/s on average). */
async function retriesWithBackoff(t: TestContext, code: status): Promise<void> {
  const fake = await startFake(t);
  fake.failNext(3, code, "FetchX509SVID");
  const harness = startHarness(t, fake.address);
  await harness.ready(20_000);
  const calls = callsOf(fake, "FetchX509SVID");
  assert.deepEqual(
    calls.map((call) => call.status),
    [code, code, code, undefined],
  );
  const first = calls[0]?.at ?? 0;
  const last = calls.at(-1)?.at ?? 0;
  const averageGapMs = (last - first) / (calls.length - 1);
  assert.ok(averageGapMs >= 50, `retries ${averageGapMs} ms apart on average`);
  assertEveryCallCarriedHeader(fake);
}

// The cases run side by side (each has its own fake agent and harness process): most of
// their time is spent waiting on backoff delays. Each has a deadline, so a harness that
// never exits (a lenient address check, a retry after InvalidArgument) fails its case.
describe("EP", { concurrency: true, timeout: 30_000 }, () => {
  test("EP-1 discovers the endpoint from SPIFFE_ENDPOINT_SOCKET (MUST)", async (t) => {
    const fake = await startFake(t);
    const harness = startHarness(t, fake.address);
    const readiness = await harness.ready();
    assert.equal(readiness.version, "1");
    assert.ok(callsOf(fake, "FetchX509SVID").length >= 1);
  });

  test("EP-2 sends workload.spiffe.io: true on every RPC (MUST)", async (t) => {
    const fake = await startFake(t);
    const harness = startHarness(t, fake.address);
    const { controlPort } = await harness.ready();
    // The JWT path too: the fake has no JWT-SVIDs, so FetchJWTSVID is refused (500), but
    // the call, like the JWT bundle stream, carries the header.
    const jwt = await fetch(`http://127.0.0.1:${controlPort}/v1/jwt/fetch`, {
      method: "POST",
      body: JSON.stringify({ audience: ["conformance"] }),
    });
    assert.equal(jwt.status, 500);
    assertEveryCallCarriedHeader(fake);
    assert.deepEqual(
      new Set(fake.calls.map((call) => call.method)),
      new Set(["FetchX509SVID", "FetchJWTBundles", "FetchJWTSVID"]),
    );
    assert.ok(fake.calls.every((call) => call.status !== status.INVALID_ARGUMENT));
  });

  test("EP-3 supports a tcp://127.0.0.1:<port> endpoint (SHOULD)", async (t) => {
    const fake = await startFake(t, { tcp: true });
    assert.match(fake.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const harness = startHarness(t, fake.address);
    await harness.ready();
    assertEveryCallCarriedHeader(fake);
  });

  describe("EP-4 rejects an endpoint URI with an authority, or a path on tcp:// (OPT: rejected)", () => {
    test("EP-4/unix-authority", async (t) => {
      const fake = await startFake(t);
      // unix://host/abs/path: the path is the working socket; a lenient client would reach it.
      const endpoint = fake.address.replace("unix://", "unix://localhost");
      const harness = startHarness(t, endpoint);
      assert.equal(await harness.exited, 1, "the harness stops: no SVID can ever come");
      assert.ok(!harness.lines.includes("READY"));
      assert.match(harness.stderr, /must not have an authority/);
      assert.equal(fake.calls.length, 0);
    });

    test("EP-4/tcp-path", async (t) => {
      const fake = await startFake(t, { tcp: true });
      const harness = startHarness(t, `${fake.address}/agent`);
      assert.equal(await harness.exited, 1);
      assert.ok(!harness.lines.includes("READY"));
      assert.match(harness.stderr, /must not have a path/);
      assert.equal(fake.calls.length, 0);
    });
  });

  test("EP-5 retries with backoff after Unavailable (SHOULD)", (t) =>
    retriesWithBackoff(t, status.UNAVAILABLE));

  test("EP-6 retries with backoff after PermissionDenied (SHOULD)", (t) =>
    retriesWithBackoff(t, status.PERMISSION_DENIED));

  test("EP-7 does not retry after InvalidArgument (SHOULD)", async (t) => {
    const fake = await startFake(t);
    fake.failWith(status.INVALID_ARGUMENT, "the request is invalid");
    const harness = startHarness(t, fake.address);
    // The harness ends when the library gives up; after its exit no call can come, so the
    // record is complete (the catalogue allows at most 2 calls per method in 5 s).
    assert.equal(await harness.exited, 1);
    assert.ok(!harness.lines.includes("READY"));
    assert.match(harness.stderr, /INVALID_ARGUMENT/);
    // One call per stream (the X.509 and the JWT bundle one), neither retried.
    assert.deepEqual(fake.calls.map((call) => [call.method, call.status]).sort(), [
      ["FetchJWTBundles", status.INVALID_ARGUMENT],
      ["FetchX509SVID", status.INVALID_ARGUMENT],
    ]);
  });

  describe("EP-8 retries when the endpoint is not reachable yet (OPT: retried)", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "ep8-"));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    test("EP-8 reaches READY once the socket appears 2 s after start", async (t) => {
      const socketPath = join(dir, "agent.sock");
      const harness = startHarness(t, `unix://${socketPath}`);
      await harness.waitForLine((line) => line.startsWith("SPIFFE_CONTROL_PORT="), 10_000);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.ok(!harness.lines.includes("READY"));
      const fake = await startFake(t, { socketPath });
      await harness.ready(15_000);
      assertEveryCallCarriedHeader(fake);
    });
  });
});
