import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { Client, credentials, Metadata, status } from "@grpc/grpc-js";
import type { X509BundleSet } from "../bundle/x509bundle.js";
import { FakeWorkloadApi } from "../testing/fake-workload-api.js";
import {
  createFixtures,
  EXAMPLE,
  FAST_BACKOFF,
  OTHER,
  RecordingLogger,
  RecordingWatcher,
  sleep,
  waitUntil,
} from "../testing/support/workloadapi.js";
import { WorkloadApiClient, type X509Context } from "./client.js";
import { WorkloadApiError } from "./errors.js";
import { workloadApiMethod } from "./proto.js";

const { exampleCa, otherCa, workload, rotated, second } = await createFixtures();

let fake: FakeWorkloadApi;
let client: WorkloadApiClient;
let logger: RecordingLogger;

beforeEach(async () => {
  fake = await FakeWorkloadApi.start();
  logger = new RecordingLogger();
  client = new WorkloadApiClient({ address: fake.address, backoff: FAST_BACKOFF, logger });
});

afterEach(async () => {
  client.close();
  await fake.stop();
});

function leafDer(context: X509Context | undefined): Buffer | undefined {
  return context?.svids[0]?.certificates[0]?.raw;
}

function trustDomains(bundles: X509BundleSet | undefined): string[] {
  return bundles?.trustDomains().map((td) => td.name) ?? [];
}

describe("WorkloadApiClient.watchX509Context", () => {
  test("delivers the first SVID, with the bundle of its own trust domain", async () => {
    fake.setX509({ svids: [workload] });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("an update", () => watcher.updates.length === 1);
    const context = watcher.updates[0] as X509Context;
    assert.equal(context.svids.length, 1);
    assert.equal(context.svids[0]?.id.toString(), "spiffe://example.org/workload");
    assert.deepEqual(leafDer(context), workload.chainDer);
    assert.deepEqual(trustDomains(context.bundles), ["example.org"]);
    const bundle = context.bundles.getX509BundleForTrustDomain(EXAMPLE);
    assert.deepEqual(bundle?.certificates[0]?.raw, exampleCa.certificate.raw);
    assert.deepEqual(watcher.errors, []);
  });

  test("the first SVID of a response is the default; all are kept in order", async () => {
    fake.setX509({ svids: [second, workload] });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("an update", () => watcher.updates.length === 1);
    const ids = watcher.last?.svids.map((svid) => svid.id.toString());
    assert.deepEqual(ids, ["spiffe://example.org/second", "spiffe://example.org/workload"]);
  });

  test("rotation: a new response replaces the SVID on the same stream", async () => {
    fake.setX509({ svids: [workload] });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("the first update", () => watcher.updates.length === 1);
    fake.setX509({ svids: [rotated] });
    await waitUntil("the rotated SVID", () => watcher.updates.length === 2);
    assert.deepEqual(leafDer(watcher.last), rotated.chainDer);
    assert.notDeepEqual(rotated.chainDer, workload.chainDer);
    assert.equal(fake.calls.length, 1, "rotation must not need a new call");
  });

  test("federated bundles are added and removed as the agent says", async () => {
    fake.setX509({ svids: [workload] });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("the first update", () => watcher.updates.length === 1);
    assert.deepEqual(trustDomains(watcher.last?.bundles), ["example.org"]);

    fake.setX509({
      svids: [workload],
      federatedBundles: { "spiffe://other.org": otherCa.bundleDer() },
    });
    await waitUntil("the federated bundle", () => watcher.updates.length === 2);
    assert.deepEqual(trustDomains(watcher.last?.bundles), ["example.org", "other.org"]);
    const federated = watcher.last?.bundles.getX509BundleForTrustDomain(OTHER);
    assert.deepEqual(federated?.certificates[0]?.raw, otherCa.certificate.raw);

    fake.setX509({ svids: [workload] });
    await waitUntil("the removal", () => watcher.updates.length === 3);
    assert.deepEqual(trustDomains(watcher.last?.bundles), ["example.org"]);
  });

  test("bad federated bundle keys and values are skipped; the rest is used", async () => {
    fake.setX509({
      svids: [workload],
      federatedBundles: {
        "other.org": otherCa.bundleDer(), // not a trust domain ID
        "spiffe://other.org/path": otherCa.bundleDer(), // an ID with a path
        "spiffe://Bad_TD!": otherCa.bundleDer(),
        "spiffe://empty.org": Buffer.alloc(0),
        "spiffe://garbage.org": Buffer.from("not DER"),
        // Must not replace the SVID's own trust domain bundle.
        "spiffe://example.org": otherCa.bundleDer(),
        "spiffe://other.org": otherCa.bundleDer(),
      },
    });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("an update", () => watcher.updates.length === 1);
    assert.deepEqual(trustDomains(watcher.last?.bundles), ["example.org", "other.org"]);
    const own = watcher.last?.bundles.getX509BundleForTrustDomain(EXAMPLE);
    assert.deepEqual(own?.certificates[0]?.raw, exampleCa.certificate.raw);
    assert.equal(logger.at("warn").length, 6, JSON.stringify(logger.entries));
  });

  test("malformed responses are discarded, the stream is kept, a later good one is taken", async () => {
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("the stream to open", () => fake.openStreamCount("FetchX509SVID") === 1);
    const good = {
      spiffe_id: workload.spiffeId,
      x509_svid: workload.chainDer,
      x509_svid_key: workload.keyDer,
      bundle: workload.bundleDer,
    };
    const malformed: Record<string, unknown>[] = [
      {},
      { svids: [] },
      { svids: [{ ...good, spiffe_id: "" }] },
      { svids: [{ ...good, x509_svid: Buffer.alloc(0) }] },
      { svids: [{ ...good, x509_svid_key: Buffer.alloc(0) }] },
      { svids: [{ ...good, bundle: Buffer.alloc(0) }] },
      { svids: [{ ...good, x509_svid: Buffer.from("not a certificate") }] },
      { svids: [{ ...good, x509_svid_key: Buffer.from("not a key") }] },
      { svids: [{ ...good, x509_svid_key: second.keyDer }] }, // key of another SVID
      { svids: [{ ...good, bundle: Buffer.from("not a bundle") }] },
      { svids: [{ ...good, spiffe_id: "spiffe://example.org/someone-else" }] },
      { svids: [good, { ...good, bundle: Buffer.alloc(0) }] }, // second SVID broken
    ];
    for (const response of malformed) fake.sendRawX509(response);
    fake.sendRawX509({ svids: [good] });
    // Every response is either delivered or discarded with a warning: wait for all of them.
    const handled = () =>
      watcher.updates.length +
      logger.at("warn").filter((entry) => /malformed/.test(entry.msg)).length;
    await waitUntil("every response handled", () => handled() === malformed.length + 1);
    assert.equal(watcher.updates.length, 1);
    assert.deepEqual(leafDer(watcher.last), workload.chainDer);
    const discarded = logger.at("warn").filter((entry) => /malformed/.test(entry.msg));
    assert.equal(discarded.length, malformed.length, JSON.stringify(logger.entries));
    assert.deepEqual(watcher.errors, []);
    assert.equal(fake.calls.length, 1, "a malformed response must not cost the stream");
  });

  test("reconnects when the agent ends the stream", async () => {
    fake.setX509({ svids: [workload] });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("the first update", () => watcher.updates.length === 1);
    fake.endStreams();
    await waitUntil("an update on a new stream", () => watcher.updates.length === 2);
    assert.equal(fake.calls.length, 2);
    assert.deepEqual(watcher.errors, [], "a normal stream end is not an error");
  });

  test("UNAVAILABLE and PERMISSION_DENIED are retried until an SVID arrives", async () => {
    fake.failWith(status.PERMISSION_DENIED, "no identity issued");
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("three refused calls", () => fake.calls.length >= 3);
    fake.failWith(status.UNAVAILABLE);
    await waitUntil("an UNAVAILABLE", () =>
      watcher.errors.some(({ error }) => error.code === "UNAVAILABLE"),
    );
    fake.failWith(undefined);
    fake.setX509({ svids: [workload] });
    await waitUntil("the SVID", () => watcher.updates.length === 1);

    assert.ok(watcher.errors.every(({ willRetry }) => willRetry));
    const denied = watcher.errors.find(({ error }) => error.code === "PERMISSION_DENIED");
    assert.ok(denied);
    assert.ok(denied.error instanceof WorkloadApiError);
    assert.equal(denied.error.grpcCode, status.PERMISSION_DENIED);
    assert.match(denied.error.message, /no registration entry matches this workload yet/);
    assert.match(denied.error.message, /no identity issued/);
  });

  test("PERMISSION_DENIED on an established stream is reported, then the stream resumes", async () => {
    fake.setX509({ svids: [workload] });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("the first update", () => watcher.updates.length === 1);
    fake.failWith(status.PERMISSION_DENIED);
    await waitUntil("the error", () => watcher.errors.length >= 1);
    assert.equal(watcher.errors[0]?.error.code, "PERMISSION_DENIED");
    assert.equal(watcher.errors[0]?.willRetry, true);
    fake.failWith(undefined);
    await waitUntil("the SVID again", () => watcher.updates.length === 2);
  });

  test("a response sent just before the stream fails is delivered before the error", async () => {
    const events: string[] = [];
    client.watchX509Context({
      onUpdate: () => events.push("update"),
      onError: (error) => events.push(error.code),
    });
    await waitUntil("the stream to open", () => fake.openStreamCount("FetchX509SVID") === 1);
    fake.setX509({ svids: [workload] });
    fake.failWith(status.PERMISSION_DENIED);
    await waitUntil("the error", () => events.includes("PERMISSION_DENIED"));
    assert.deepEqual(events.slice(0, 2), ["update", "PERMISSION_DENIED"]);
  });

  test("INVALID_ARGUMENT ends the watch: one call, no retry storm", async () => {
    fake.failWith(status.INVALID_ARGUMENT, "bad request");
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("the error", () => watcher.errors.length === 1);
    // FAST_BACKOFF would have retried ~10 times in this window.
    await sleep(300);
    assert.equal(fake.calls.length, 1);
    assert.equal(watcher.errors.length, 1);
    const { error, willRetry } = watcher.errors[0] ?? assert.fail("no error");
    assert.equal(willRetry, false);
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.equal(error.grpcCode, status.INVALID_ARGUMENT);
    assert.match(error.message, /will not be retried/);
  });

  test("backoff grows between failed attempts and resets after a good response", async (t) => {
    // Jitter at its top, so every delay is its ceiling (minus rounding) and can be named.
    t.mock.method(Math, "random", () => 0.999);
    client.close();
    client = new WorkloadApiClient({
      address: fake.address,
      backoff: { initialMs: 20, maxMs: 5000 },
      logger,
    });
    const delays = () =>
      logger.at("warn").map((entry) => (entry.obj as { delayMs: number }).delayMs);
    fake.failWith(status.UNAVAILABLE);
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    await waitUntil("four failed attempts", () => delays().length >= 4);
    assert.deepEqual(delays().slice(0, 4), [19, 39, 79, 159]);

    // The agent recovers: the next attempt gets an SVID, which resets the backoff...
    fake.failWith(undefined);
    fake.setX509({ svids: [workload] });
    await waitUntil("a good response", () => watcher.updates.length === 1);
    const failuresBefore = delays().length;
    // ...so when the stream fails again, the delays start over from the first one.
    fake.failWith(status.UNAVAILABLE);
    await waitUntil("two more failures", () => delays().length >= failuresBefore + 2);
    assert.deepEqual(delays().slice(failuresBefore, failuresBefore + 2), [19, 39]);
  });

  test("every call carries the workload.spiffe.io security header", async () => {
    fake.setX509({ svids: [workload] });
    fake.setBundles({ "spiffe://example.org": exampleCa.bundleDer() });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    client.watchX509Bundles(new RecordingWatcher<X509BundleSet>());
    await waitUntil("the first update", () => watcher.updates.length === 1);
    fake.endStreams();
    fake.failWith(status.UNAVAILABLE);
    await waitUntil("a few retries", () => fake.calls.length >= 6);
    fake.failWith(undefined);
    await client.fetchX509Context();
    await client.fetchX509Bundles();
    assert.ok(fake.calls.some((call) => call.method === "FetchX509Bundles"));
    for (const call of fake.calls) {
      assert.deepEqual(call.metadata.get("workload.spiffe.io"), ["true"], call.method);
    }
  });

  test("cancel() ends the stream on the server and stops retries", async () => {
    fake.setX509({ svids: [workload] });
    const watcher = new RecordingWatcher<X509Context>();
    const watch = client.watchX509Context(watcher);
    await waitUntil("the first update", () => watcher.updates.length === 1);
    watch.cancel();
    await waitUntil("the server to see the cancel", () => fake.cancelledStreams === 1);
    assert.equal(fake.openStreamCount(), 0);
    fake.setX509({ svids: [rotated] });
    await sleep(100);
    assert.equal(watcher.updates.length, 1);
    assert.equal(fake.calls.length, 1);
  });

  test("close() cancels streams and pending retries; later calls are refused", async () => {
    fake.setX509({ svids: [workload] });
    const watcher = new RecordingWatcher<X509Context>();
    client.watchX509Context(watcher);
    const failing = new RecordingWatcher<X509BundleSet>();
    fake.failWith(status.UNAVAILABLE); // only affects calls from now on and open streams
    await waitUntil("the SVID stream", () => fake.calls.length >= 1);
    client.watchX509Bundles(failing);
    await waitUntil("a bundles failure", () => failing.errors.length >= 1);
    client.close();
    client.close(); // idempotent
    // A call already on its way may still reach the server; after that, silence.
    await waitUntil("no open stream", () => fake.openStreamCount() === 0);
    await sleep(30);
    const callsAfterClose = fake.calls.length;
    await sleep(150); // FAST_BACKOFF would have retried several times by now
    assert.equal(fake.calls.length, callsAfterClose, "no retry after close()");
    assert.throws(() => client.watchX509Context(watcher), { code: "CLIENT_CLOSED" });
    await assert.rejects(client.fetchX509Context(), { code: "CLIENT_CLOSED" });
  });

  test("a watcher that throws does not break the stream", async () => {
    fake.setX509({ svids: [workload] });
    let calls = 0;
    client.watchX509Context({
      onUpdate() {
        calls += 1;
        throw new Error("boom");
      },
      onError() {},
    });
    await waitUntil("the first update", () => calls === 1);
    fake.setX509({ svids: [rotated] });
    await waitUntil("the second update", () => calls === 2);
    assert.equal(logger.at("error").length, 2);
  });
});

describe("WorkloadApiClient.watchX509Bundles", () => {
  test("delivers bundle sets keyed by trust domain, and their changes", async () => {
    fake.setBundles({ "spiffe://example.org": exampleCa.bundleDer() });
    const watcher = new RecordingWatcher<X509BundleSet>();
    client.watchX509Bundles(watcher);
    await waitUntil("the first update", () => watcher.updates.length === 1);
    assert.deepEqual(trustDomains(watcher.last), ["example.org"]);
    fake.setBundles({
      "spiffe://example.org": exampleCa.bundleDer(),
      "spiffe://other.org": otherCa.bundleDer(),
    });
    await waitUntil("the second update", () => watcher.updates.length === 2);
    assert.deepEqual(trustDomains(watcher.last), ["example.org", "other.org"]);
  });

  test("a response without a usable bundle is discarded", async () => {
    fake.setBundles({ "not-an-id": exampleCa.bundleDer() });
    const watcher = new RecordingWatcher<X509BundleSet>();
    client.watchX509Bundles(watcher);
    await waitUntil("the discard", () => logger.at("warn").some((e) => /malformed/.test(e.msg)));
    assert.equal(watcher.updates.length, 0);
    fake.setBundles({ "spiffe://other.org": otherCa.bundleDer() });
    await waitUntil("the good update", () => watcher.updates.length === 1);
    assert.deepEqual(trustDomains(watcher.last), ["other.org"]);
  });
});

describe("WorkloadApiClient one-shot fetches", () => {
  test("fetchX509Context resolves with the first valid response", async () => {
    fake.setX509({ svids: [workload] });
    const context = await client.fetchX509Context();
    assert.deepEqual(leafDer(context), workload.chainDer);
    await waitUntil("the stream to be cancelled", () => fake.openStreamCount() === 0);
  });

  test("fetchX509Context rejects with the agent's error, without retrying", async () => {
    fake.failWith(status.PERMISSION_DENIED);
    await assert.rejects(client.fetchX509Context(), {
      name: "WorkloadApiError",
      code: "PERMISSION_DENIED",
      message: /no registration entry matches this workload yet/,
    });
    assert.equal(fake.calls.length, 1);
  });

  test("a tcp:// Workload API address works like a unix socket", async () => {
    const tcpAgent = await FakeWorkloadApi.start({ tcp: true });
    const tcpClient = new WorkloadApiClient({ address: tcpAgent.address, logger });
    try {
      assert.match(tcpAgent.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(String(tcpClient.address), tcpAgent.address);
      tcpAgent.setX509({ svids: [workload] });
      tcpAgent.setBundles({ "spiffe://other.org": otherCa.bundleDer() });
      assert.deepEqual(leafDer(await tcpClient.fetchX509Context()), workload.chainDer);
      assert.deepEqual(trustDomains(await tcpClient.fetchX509Bundles()), ["other.org"]);
      assert.deepEqual(
        tcpAgent.calls.map((call) => call.method),
        ["FetchX509SVID", "FetchX509Bundles"],
      );
    } finally {
      tcpClient.close();
      await tcpAgent.stop();
    }
  });

  test("an unreachable agent gives an UNAVAILABLE error naming the address", async () => {
    const address = fake.address;
    await fake.stop();
    await assert.rejects(client.fetchX509Bundles(), (error: unknown) => {
      assert.ok(error instanceof WorkloadApiError);
      assert.equal(error.code, "UNAVAILABLE");
      assert.ok(error.message.includes(`cannot reach the SPIRE Agent at ${address}`));
      assert.match(error.message, /is it running and is the socket path right\?/);
      return true;
    });
  });
});

describe("FakeWorkloadApi", () => {
  test("rejects calls without the security header, as a real agent does", async () => {
    const raw = new Client(fake.address, credentials.createInsecure());
    const method = workloadApiMethod("FetchX509SVID");
    try {
      const result = await new Promise<{ code: number; details: string }>((resolve) => {
        const call = raw.makeServerStreamRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          {},
          new Metadata(),
        );
        call.on("error", () => {});
        call.on("status", resolve);
      });
      assert.equal(result.code, status.INVALID_ARGUMENT);
      assert.equal(result.details, "security header missing from request");
    } finally {
      raw.close();
    }
  });
});
