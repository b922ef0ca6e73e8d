import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { afterEach, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { status } from "@grpc/grpc-js";
import type { X509BundleSet } from "../bundle/x509bundle.js";
import { TestCa } from "../testing/ca.js";
import { type FakeSvid, FakeWorkloadApi } from "../testing/fake-workload-api.js";
import {
  createFixtures,
  EXAMPLE,
  FAST_BACKOFF,
  OTHER,
  RecordingLogger,
  sleep,
  waitUntil,
} from "../testing/support/workloadapi.js";
import type { X509Svid } from "../x509svid/index.js";
import type { WorkloadApiError } from "./errors.js";
import {
  X509Source,
  X509SourceError,
  type X509SourceEvents,
  type X509SourceOptions,
} from "./x509source.js";

const { exampleCa, otherCa, workload, rotated, second } = await createFixtures();

let fake: FakeWorkloadApi;
const sources: X509Source[] = [];

function newSource(options: X509SourceOptions = {}): X509Source {
  const source = new X509Source({
    address: fake.address,
    backoff: FAST_BACKOFF,
    logger: new RecordingLogger(),
    ...options,
  });
  sources.push(source);
  return source;
}

/**
 * The next `event` of `source`. Unlike events.once, an "error" on the way does not reject:
 * the tests below expect errors before the event they wait for.
 */
function nextEvent<E extends keyof X509SourceEvents>(
  source: X509Source,
  event: E,
): Promise<X509SourceEvents[E]> {
  return new Promise((resolve) => {
    source.once(event, ((...args: X509SourceEvents[E]) => resolve(args)) as never);
  });
}

/** An SVID for spiffe://example.org/workload with the given validity. */
async function svidValid(notBefore: Date, notAfter: Date): Promise<FakeSvid> {
  const issued = await exampleCa.issue("spiffe://example.org/workload", { notBefore, notAfter });
  return {
    spiffeId: "spiffe://example.org/workload",
    chainDer: issued.chainDer,
    keyDer: issued.keyDer,
    bundleDer: exampleCa.bundleDer(),
  };
}

/** Every event the source emits, in order, with what svidChanged and bundlesChanged carried. */
function recordChanges(source: X509Source) {
  const events: string[] = [];
  const svids: (X509Svid | undefined)[] = [];
  const bundles: { bundles: X509BundleSet; previous: X509BundleSet }[] = [];
  source.on("svidChanged", (svid) => {
    events.push("svidChanged");
    svids.push(svid);
  });
  source.on("bundlesChanged", (current, previous) => {
    events.push("bundlesChanged");
    bundles.push({ bundles: current, previous });
  });
  source.on("update", () => events.push("update"));
  const count = (event: string) => events.filter((e) => e === event).length;
  return { events, svids, bundles, count };
}

function names(bundles: X509BundleSet | undefined): string[] {
  return bundles?.trustDomains().map((td) => td.name) ?? [];
}

function countUpdates(source: X509Source): { count: number } {
  const counter = { count: 0 };
  source.on("update", () => {
    counter.count += 1;
  });
  return counter;
}

beforeEach(async () => {
  fake = await FakeWorkloadApi.start();
});

afterEach(async () => {
  for (const source of sources.splice(0)) source.close();
  await fake.stop();
});

describe("X509Source", () => {
  test("ready() resolves on the first SVID; SVID and bundles are served", async () => {
    fake.setX509({
      svids: [workload],
      federatedBundles: { "spiffe://other.org": otherCa.bundleDer() },
    });
    const source = newSource();
    assert.equal(source.getX509Svid(), undefined);
    assert.equal(source.getX509Bundles().size, 0);
    await source.ready({ timeoutMs: 5000 });
    assert.equal(source.getX509Svid()?.id.toString(), "spiffe://example.org/workload");
    assert.deepEqual(source.getX509Svid()?.certificates[0]?.raw, workload.chainDer);
    assert.deepEqual(
      source.getX509BundleForTrustDomain(EXAMPLE)?.certificates[0]?.raw,
      exampleCa.certificate.raw,
    );
    assert.deepEqual(
      source.getX509BundleForTrustDomain(OTHER)?.certificates[0]?.raw,
      otherCa.certificate.raw,
    );
    assert.equal(source.lastError, undefined);
    await source.ready(); // resolves at once when an SVID is there
  });

  test("serves the first SVID by default, or the one pickSvid chooses", async () => {
    fake.setX509({ svids: [second, workload] });
    const first = newSource();
    const picked = new X509Source({
      address: fake.address,
      backoff: FAST_BACKOFF,
      pickSvid: (svids) =>
        svids.find((svid) => svid.id.path === "/workload") ?? assert.fail("no /workload SVID"),
    });
    sources.push(picked);
    await Promise.all([first.ready({ timeoutMs: 5000 }), picked.ready({ timeoutMs: 5000 })]);
    assert.equal(first.getX509Svid()?.id.toString(), "spiffe://example.org/second");
    assert.equal(picked.getX509Svid()?.id.toString(), "spiffe://example.org/workload");
  });

  test("rotation: a new SVID replaces the old and emits update", async () => {
    fake.setX509({ svids: [workload] });
    const source = newSource();
    const updates = countUpdates(source);
    await source.ready({ timeoutMs: 5000 });
    assert.equal(updates.count, 1);
    fake.setX509({ svids: [rotated] });
    await waitUntil("the rotation", () => updates.count === 2);
    assert.deepEqual(source.getX509Svid()?.certificates[0]?.raw, rotated.chainDer);
  });

  test("federated bundles come and go with the agent's responses", async () => {
    fake.setX509({ svids: [workload] });
    const source = newSource();
    const updates = countUpdates(source);
    await source.ready({ timeoutMs: 5000 });
    assert.equal(source.getX509BundleForTrustDomain(OTHER), undefined);
    fake.setX509({
      svids: [workload],
      federatedBundles: { "spiffe://other.org": otherCa.bundleDer() },
    });
    await waitUntil("the federated bundle", () => updates.count === 2);
    assert.ok(source.getX509BundleForTrustDomain(OTHER));
    fake.setX509({ svids: [workload] });
    await waitUntil("its removal", () => updates.count === 3);
    assert.equal(source.getX509BundleForTrustDomain(OTHER), undefined);
    assert.ok(source.getX509BundleForTrustDomain(EXAMPLE));
  });

  test("an identical re-send emits update only, not svidChanged or bundlesChanged", async () => {
    const response = {
      svids: [workload],
      federatedBundles: { "spiffe://other.org": otherCa.bundleDer() },
    };
    fake.setX509(response);
    const source = newSource();
    const changes = recordChanges(source);
    await source.ready({ timeoutMs: 5000 });
    assert.deepEqual(changes.events, ["svidChanged", "bundlesChanged", "update"]);
    fake.setX509(response);
    fake.endStreams(); // the new stream starts with the same response again
    await waitUntil("two re-sends", () => changes.count("update") === 3);
    assert.deepEqual(changes.events.slice(3), ["update", "update"]);
  });

  test("bundlesChanged: a federated bundle added, then removed; the SVID unchanged", async () => {
    fake.setX509({ svids: [workload] });
    const source = newSource();
    const changes = recordChanges(source);
    await source.ready({ timeoutMs: 5000 });
    fake.setX509({
      svids: [workload],
      federatedBundles: { "spiffe://other.org": otherCa.bundleDer() },
    });
    await waitUntil("the federated bundle", () => changes.count("update") === 2);
    fake.setX509({ svids: [workload] });
    await waitUntil("its removal", () => changes.count("update") === 3);
    assert.deepEqual(changes.events.slice(3), [
      "bundlesChanged",
      "update",
      "bundlesChanged",
      "update",
    ]);
    const [added, removed] = changes.bundles.slice(1);
    assert.deepEqual(names(added?.bundles), ["example.org", "other.org"]);
    assert.deepEqual(names(added?.previous), ["example.org"]);
    assert.deepEqual(names(removed?.bundles), ["example.org"]);
    assert.deepEqual(names(removed?.previous), ["example.org", "other.org"]);
  });

  test("bundlesChanged: a CA rotation in the workload's own trust domain", async () => {
    fake.setX509({ svids: [workload] });
    const source = newSource();
    const changes = recordChanges(source);
    await source.ready({ timeoutMs: 5000 });
    const nextCa = await TestCa.create("example.org");
    // The agent announces the next CA beside the current one before it signs with it.
    const bundleDer = Buffer.concat([exampleCa.bundleDer(), nextCa.bundleDer()]);
    fake.setX509({ svids: [{ ...workload, bundleDer }] });
    await waitUntil("the new bundle", () => changes.count("update") === 2);
    assert.deepEqual(changes.events.slice(3), ["bundlesChanged", "update"]);
    assert.equal(
      changes.bundles[1]?.bundles.getX509BundleForTrustDomain(EXAMPLE)?.certificates.length,
      2,
    );
  });

  test("svidChanged: rotation hands over the new SVID; withdrawal hands over undefined", async () => {
    fake.setX509({ svids: [workload] });
    const source = newSource();
    const changes = recordChanges(source);
    await source.ready({ timeoutMs: 5000 });
    fake.setX509({ svids: [rotated] });
    await waitUntil("the rotation", () => changes.count("update") === 2);
    assert.deepEqual(changes.events.slice(3), ["svidChanged", "update"]);
    assert.deepEqual(changes.svids[1]?.certificates[0]?.raw, rotated.chainDer);

    fake.failWith(status.PERMISSION_DENIED);
    await waitUntil("the withdrawal", () => changes.count("update") === 3);
    assert.deepEqual(changes.events.slice(5), ["svidChanged", "bundlesChanged", "update"]);
    assert.equal(changes.svids[2], undefined);
    assert.equal(changes.bundles[1]?.bundles.size, 0);
  });

  test("reconnects after the agent ends the stream and keeps serving", async () => {
    fake.setX509({ svids: [workload] });
    const source = newSource();
    const updates = countUpdates(source);
    await source.ready({ timeoutMs: 5000 });
    fake.endStreams();
    await waitUntil("the new stream's update", () => updates.count === 2);
    assert.equal(fake.calls.length, 2);
    assert.ok(source.getX509Svid());
  });

  test("PERMISSION_DENIED: ready() times out naming the missing entry; the SVID comes once it exists", async () => {
    fake.failWith(status.PERMISSION_DENIED);
    const source = newSource();
    const errors: Error[] = [];
    source.on("error", (error) => errors.push(error));
    await waitUntil("two refusals: the source keeps asking", () => errors.length >= 2);
    assert.ok(fake.calls.length >= 2);
    assert.equal(source.lastError?.name, "WorkloadApiError");
    await assert.rejects(source.ready({ timeoutMs: 50 }), (error: unknown) => {
      assert.ok(error instanceof X509SourceError);
      assert.equal(error.code, "timeout");
      assert.match(error.message, /within 50 ms/);
      assert.match(error.message, /no registration entry matches this workload yet/);
      assert.ok(error.message.includes(fake.address));
      return true;
    });

    // The entry is registered: the agent starts answering.
    fake.failWith(undefined);
    fake.setX509({ svids: [workload] });
    await source.ready({ timeoutMs: 5000 });
    assert.equal(source.getX509Svid()?.id.toString(), "spiffe://example.org/workload");
    assert.equal(source.lastError, undefined);
  });

  test("ready() timeout without any answer says so", async () => {
    const source = newSource(); // the fake keeps the stream open but sends nothing
    await assert.rejects(source.ready({ timeoutMs: 100 }), {
      code: "timeout",
      message: new RegExp(`no answer from the SPIRE Agent at ${fake.address} yet`),
    });
  });

  test("ready() timeout while the agent is unreachable says where it looked", async () => {
    const address = fake.address;
    await fake.stop();
    const source = new X509Source({
      address,
      backoff: FAST_BACKOFF,
      logger: new RecordingLogger(),
    });
    sources.push(source);
    await waitUntil("the first failed attempt", () => source.lastError !== undefined);
    await assert.rejects(source.ready({ timeoutMs: 50 }), {
      code: "timeout",
      message:
        /cannot reach the SPIRE Agent at unix:\/\/\/.*is it running and is the socket path right\?/,
    });
  });

  test("a transient PERMISSION_DENIED: the SVID is served until the renewed one replaces it, no gap", async () => {
    const graceMs = 300;
    const federated = { "spiffe://other.org": otherCa.bundleDer() };
    fake.setX509({ svids: [workload], federatedBundles: federated });
    const source = newSource({ permissionDeniedGraceMs: graceMs });
    await source.ready({ timeoutMs: 5000 });
    const events: string[] = [];
    source.on("svidChanged", () => events.push("svidChanged"));
    source.on("bundlesChanged", () => events.push("bundlesChanged"));
    source.on("update", () => events.push("update"));
    let servedAtDenial: { svid?: Buffer; bundles: string[] } | undefined;
    let graceOver: Promise<void> | undefined;
    source.on("error", (error) => {
      events.push(`error ${(error as WorkloadApiError).code}`);
      servedAtDenial = {
        svid: source.getX509Svid()?.certificates[0]?.raw,
        bundles: names(source.getX509Bundles()),
      };
      // Set after the source's grace timer and as long: Node runs timers of equal length
      // in the order they were set, so once this one fires the grace period is over.
      graceOver ??= sleep(graceMs);
    });

    // The agent refuses the stream for a moment, then issues the renewed SVID.
    const renewed = nextEvent(source, "svidChanged");
    fake.endStreamsWith(status.PERMISSION_DENIED, "no identity issued");
    fake.setX509({ svids: [rotated], federatedBundles: federated });
    const [svid] = await renewed;

    assert.deepEqual(svid?.certificates[0]?.raw, rotated.chainDer);
    assert.deepEqual(events, ["error PERMISSION_DENIED", "svidChanged", "update"]);
    assert.deepEqual(servedAtDenial, {
      svid: workload.chainDer,
      bundles: ["example.org", "other.org"],
    });
    assert.equal(fake.calls.length, 2, "one stream refused, one renewed");
    await graceOver;
    assert.deepEqual(events.length, 3, "nothing withdrawn when the grace period ended");
    assert.deepEqual(source.getX509Svid()?.certificates[0]?.raw, rotated.chainDer);
    assert.equal(source.getX509Bundles().size, 2);
  });

  test("a confirmed PERMISSION_DENIED (the retry is refused too) withdraws within 5 s", async (t) => {
    fake.setX509({ svids: [workload] });
    // The library's default retry delays; the longest grace period, so a withdrawal within
    // 5 s can only come from the refused retry.
    const source = newSource({ backoff: undefined, permissionDeniedGraceMs: 5000 });
    await source.ready({ timeoutMs: 5000 });
    const withdrawn = nextEvent(source, "svidChanged");
    const refusedAt = Date.now();
    fake.failWith(status.PERMISSION_DENIED, "no identity issued");
    const [svid] = await withdrawn;
    const elapsedMs = Date.now() - refusedAt;
    t.diagnostic(`withdrawn ${elapsedMs} ms after the first refusal`);

    assert.equal(svid, undefined);
    assert.equal(source.getX509Svid(), undefined);
    assert.equal(source.getX509Bundles().size, 0);
    assert.equal(fake.calls.length, 2, "withdrawn when the retry was refused");
    assert.ok(elapsedMs < 5000, `withdrawn after ${elapsedMs} ms`);
    // Not asked again at once: a refusal lasting a moment must be over by the retry.
    assert.ok(elapsedMs >= 490, `retried after ${elapsedMs} ms`);
  });

  test("no answer after a PERMISSION_DENIED: withdrawn when the grace period ends", async () => {
    const graceMs = 300;
    fake.setX509({ svids: [workload] });
    const source = newSource({ permissionDeniedGraceMs: graceMs });
    await source.ready({ timeoutMs: 5000 });
    const errors: string[] = [];
    source.on("error", (error) => errors.push((error as WorkloadApiError).code));
    const withdrawn = nextEvent(source, "svidChanged");
    const refusedAt = Date.now();
    fake.endStreamsWith(status.PERMISSION_DENIED);
    fake.withholdX509(); // the retry's stream opens and stays silent
    const [svid] = await withdrawn;
    const elapsedMs = Date.now() - refusedAt;

    assert.equal(svid, undefined);
    assert.equal(source.getX509Bundles().size, 0);
    assert.deepEqual(errors, ["PERMISSION_DENIED"], "no second refusal");
    assert.equal(fake.openStreamCount("FetchX509SVID"), 1, "the retry is still waiting");
    assert.ok(elapsedMs >= graceMs - 10 && elapsedMs < 5000, `withdrawn after ${elapsedMs} ms`);
  });

  test("an SVID that arrives expired is never served", async () => {
    const hour = 3600_000;
    const expired = await svidValid(new Date(Date.now() - 2 * hour), new Date(Date.now() - hour));
    fake.setX509({ svids: [expired] });
    const source = newSource();
    const changes = recordChanges(source);
    await assert.rejects(source.ready({ timeoutMs: 300 }), { code: "timeout" });
    assert.equal(changes.count("update"), 1, "the response was received");
    assert.equal(source.getX509Svid(), undefined);

    fake.setX509({ svids: [workload] }); // barrier: a valid SVID after the expired one
    await source.ready({ timeoutMs: 5000 });
    assert.equal(changes.svids.length, 1, "svidChanged only for the valid SVID");
    assert.deepEqual(changes.svids[0]?.certificates[0]?.raw, workload.chainDer);
  });

  test("an SVID that expires during the grace period is withdrawn at its expiry", async () => {
    // Certificate times have whole seconds: this one expires 1.5 to 2.5 s from now.
    const shortLived = await svidValid(new Date(Date.now() - 60_000), new Date(Date.now() + 2500));
    fake.setX509({ svids: [shortLived] });
    const source = newSource({ permissionDeniedGraceMs: 5000 });
    await source.ready({ timeoutMs: 5000 });
    const expiresAt = source.getX509Svid()?.expiresAt.getTime() ?? 0;
    const withdrawn = nextEvent(source, "svidChanged");
    fake.endStreamsWith(status.PERMISSION_DENIED);
    fake.withholdX509();
    const [svid] = await withdrawn;

    assert.equal(svid, undefined);
    assert.ok(Date.now() > expiresAt, "not before its notAfter");
    assert.equal(source.getX509Svid(), undefined);
  });

  test("permissionDeniedGraceMs outside 0..5000 ms is refused with a clear error", () => {
    for (const permissionDeniedGraceMs of [-1, 5001, Number.NaN]) {
      assert.throws(() => new X509Source({ address: fake.address, permissionDeniedGraceMs }), {
        name: "X509SourceError",
        code: "invalid-option",
        message: /permissionDeniedGraceMs must be a number of milliseconds from 0 to 5000/,
      });
    }
  });

  test("a confirmed PERMISSION_DENIED withdraws the SVID and bundles until the agent issues one again", async () => {
    fake.setX509({ svids: [workload] });
    const source = newSource();
    const updates = countUpdates(source);
    await source.ready({ timeoutMs: 5000 });
    fake.failWith(status.PERMISSION_DENIED);
    await waitUntil("the withdrawal", () => updates.count === 2);
    assert.equal(source.getX509Svid(), undefined);
    assert.equal(source.getX509BundleForTrustDomain(EXAMPLE), undefined);
    assert.equal(source.getX509Bundles().size, 0);
    await sleep(100); // several refused retries later, still nothing served
    assert.equal(source.getX509Svid(), undefined);
    assert.equal(updates.count, 2, "only one withdrawal");
    const readyAgain = source.ready({ timeoutMs: 5000 });

    fake.failWith(undefined);
    await readyAgain;
    assert.ok(source.getX509Svid());
  });

  test("INVALID_ARGUMENT makes ready() reject at once, without retrying", async () => {
    fake.failWith(status.INVALID_ARGUMENT, "bad request");
    const source = newSource();
    const started = Date.now();
    await assert.rejects(source.ready({ timeoutMs: 10_000 }), {
      name: "X509SourceError",
      code: "failed",
      message: /rejected the request as invalid/,
    });
    assert.ok(Date.now() - started < 5000);
    await assert.rejects(source.ready(), { code: "failed" });
    await sleep(200);
    assert.equal(fake.calls.length, 1);
  });

  test("errors without an 'error' listener are not emitted (Node would throw), lastError tells", async () => {
    fake.failWith(status.UNAVAILABLE);
    const logger = new RecordingLogger();
    const source = new X509Source({ address: fake.address, backoff: FAST_BACKOFF, logger });
    sources.push(source);
    assert.equal(source.listenerCount("error"), 0);
    await waitUntil("a few failures", () => fake.calls.length >= 3);
    assert.equal(source.lastError?.name, "WorkloadApiError");
    // Emitting "error" without a listener throws; the client would catch and log that as
    // "a Workload API watcher threw", so an empty error log shows nothing was emitted.
    assert.deepEqual(
      logger.at("error").map((entry) => entry.msg),
      [],
    );
    const errors: Error[] = [];
    source.on("error", (error) => errors.push(error));
    await waitUntil("an error emitted to the listener", () => errors.length >= 1);
  });

  test("close() cancels the stream on the agent, rejects pending ready(), is idempotent", async () => {
    const source = newSource();
    await waitUntil("the stream", () => fake.openStreamCount() === 1);
    const pending = source.ready();
    source.close();
    source.close();
    await assert.rejects(pending, { name: "X509SourceError", code: "closed" });
    await assert.rejects(source.ready(), { code: "closed" });
    await waitUntil("the agent to see the cancel", () => fake.cancelledStreams === 1);
    assert.equal(fake.openStreamCount(), 0);
    fake.setX509({ svids: [workload] });
    await sleep(50);
    assert.equal(source.getX509Svid(), undefined);
  });

  test("close() leaves nothing running: a process that used sources exits by itself", async () => {
    const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    const fixture = fileURLToPath(
      new URL(`../testing/support/x509source-exit.fixture${extension}`, import.meta.url),
    );
    // process.execArgv carries tsx's loader when these tests run from source.
    const child = spawn(process.execPath, [...process.execArgv, fixture], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      child.on("exit", (exitCode) => {
        clearTimeout(killer);
        resolve(exitCode);
      });
    });
    assert.equal(code, 0, `the child did not exit cleanly by itself: ${stderr}`);
    const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
    assert.match(result.pending, /is closed/);
    assert.equal(result.cancelled, 1, "the established stream was cancelled on the agent");
    assert.ok(Date.now() - started < 15_000);
  });
});
