// The harness script against the contract (docs/HARNESS_CONTRACT.md, v1), run as its
// own process against the fake Workload API: readiness lines, both roles, the control
// port's envelope, and SIGTERM.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { status } from "@grpc/grpc-js";
import { TestCa } from "../testing/ca.js";
import { FakeWorkloadApi } from "../testing/fake-workload-api.js";
import {
  asFakeSvid,
  assertEveryCallCarriedHeader,
  controlRequest,
  dialThroughHarness,
  OWN_ID,
  PROBE_ID,
  probeX509Port,
  TD,
  waitFor,
} from "../testing/support/conformance-bed.js";
import { HarnessProcess, type Readiness } from "../testing/support/harness-process.js";

/** The demo's fixed ports: the harness must never take one of them. */
const DEMO_PORTS = new Set([8080, 8090, 8091, 8181, 8182, 8443, 8444]);

describe("conformance harness (contract v1)", () => {
  let ca: TestCa;
  let fake: FakeWorkloadApi;
  let harness: HarnessProcess;
  let readiness: Readiness;

  before(async () => {
    ca = await TestCa.create(TD);
    fake = await FakeWorkloadApi.start();
    harness = HarnessProcess.start(fake.address);
  });
  after(async () => {
    await harness.stop();
    await fake.stop();
  });

  test("prints its ports with listeners up, and READY only after the first SVID", async () => {
    // The fake has no SVID yet: the stream is open but silent.
    await harness.waitForLine((line) => line.startsWith("SPIFFE_CONTROL_PORT="), 10_000);
    await harness.waitForLine((line) => line.startsWith("SPIFFE_X509_PORT="), 10_000);
    const controlPort = Number(
      harness.lines.find((line) => line.startsWith("SPIFFE_CONTROL_PORT="))?.split("=")[1],
    );
    const info = await controlRequest(controlPort, "GET", "/v1/info");
    assert.equal(info.status, 200, "the control port accepts connections before READY");
    assert.equal(info.body.language, "typescript");
    assert.ok(!harness.lines.includes("READY"), "no READY before an SVID");

    fake.setX509({ svids: [asFakeSvid(await ca.issue(OWN_ID), OWN_ID, ca.bundleDer())] });
    readiness = await harness.ready();
    assert.equal(readiness.lines.at(-1), "READY");
    assert.deepEqual(
      readiness.lines
        .slice(0, 3)
        .map((line) => line.split("=")[0])
        .sort(),
      ["SPIFFE_CONTROL_PORT", "SPIFFE_HARNESS_VERSION", "SPIFFE_X509_PORT"],
    );
    assert.equal(readiness.version, "1");
    for (const port of [readiness.x509Port, readiness.controlPort]) {
      assert.ok(port > 0 && !DEMO_PORTS.has(port), `port ${port} is an ephemeral one`);
    }
  });

  test("server role: the X.509 port writes an accepted client's ID and nothing for a refused one", async () => {
    const accepted = await probeX509Port(readiness.x509Port, await ca.issue(PROBE_ID));
    assert.equal(accepted.peerId, PROBE_ID);
    assert.equal(accepted.presented[0]?.subjectAltName, `URI:${OWN_ID}`);
    const refused = await probeX509Port(
      readiness.x509Port,
      await ca.issue(PROBE_ID, { keyUsage: { digitalSignature: true, keyCertSign: true } }),
    );
    assert.equal(refused.accepted, false);
    // The reason goes to stderr, which may arrive after the connection closed.
    await waitFor("the refusal on stderr", () =>
      /refused a client: .*keyCertSign/.test(harness.stderr),
    );
    const anonymous = await probeX509Port(readiness.x509Port, undefined);
    assert.equal(anonymous.accepted, false, "a client certificate is required");
  });

  test("client role: /v1/x509/dial answers ok with the server's ID, or 422 rejected", async () => {
    const ok = await dialThroughHarness(readiness.controlPort, await ca.issue(PROBE_ID));
    assert.deepEqual(ok, { accepted: true, peerId: PROBE_ID });
    const impostor = await TestCa.create(TD);
    const rejected = await dialThroughHarness(
      readiness.controlPort,
      await impostor.issue(PROBE_ID),
    );
    assert.equal(rejected.accepted, false);
    assert.equal(rejected.code, "untrusted");
  });

  test("the control port's envelope: 422 for a refused token, 500 for what it cannot do", async () => {
    const port = readiness.controlPort;
    const validate = await controlRequest(port, "POST", "/v1/jwt/validate", {
      token: "x",
      audience: "a",
    });
    assert.deepEqual(
      [validate.status, validate.body.status, validate.body.code],
      [422, "rejected", "malformed"],
    );
    // The fake has no JWT-SVIDs: FetchJWTSVID answers PERMISSION_DENIED.
    const fetched = await controlRequest(port, "POST", "/v1/jwt/fetch", { audience: ["a"] });
    assert.deepEqual([fetched.status, fetched.body.status], [500, "error"]);
    const noAudience = await controlRequest(port, "POST", "/v1/jwt/fetch", { audience: "a" });
    assert.deepEqual([noAudience.status, noAudience.body.status], [500, "error"]);
    const badBody = await controlRequest(port, "POST", "/v1/x509/dial", { address: "nowhere" });
    assert.deepEqual([badBody.status, badBody.body.status], [500, "error"]);
    // Nothing listens on port 9 of loopback: the dial fails, which is no refusal.
    const unreachable = await controlRequest(port, "POST", "/v1/x509/dial", {
      address: "127.0.0.1:9",
    });
    assert.deepEqual([unreachable.status, unreachable.body.status], [500, "error"]);
    assertEveryCallCarriedHeader(fake);
    assert.ok(fake.calls.every((call) => call.status !== status.INVALID_ARGUMENT));
  });

  test("exits promptly on SIGTERM", async () => {
    const started = Date.now();
    assert.equal(await harness.stop(), 0);
    assert.ok(Date.now() - started < 5000);
  });
});
