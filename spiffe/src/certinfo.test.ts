import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { certificateDetails } from "./certinfo.js";
import { TestCa } from "./testing/ca.js";

describe("certificateDetails", () => {
  let ca: TestCa;
  before(async () => {
    ca = await TestCa.create("broker.org");
  });

  it("reads a SPIRE-like root: cA, keyCertSign + cRLSign, trust domain URI", () => {
    const details = certificateDetails(ca.certificate);
    assert.equal(details.isCa, true);
    assert.equal(details.pathLength, undefined);
    assert.deepEqual(details.keyUsage, {
      digitalSignature: false,
      keyCertSign: true,
      cRLSign: true,
    });
    assert.deepEqual(details.uris, ["spiffe://broker.org"]);
    assert.deepEqual(details.dnsNames, []);
  });

  it("reads a leaf's SANs in order, keyUsage and validity", async () => {
    const notBefore = new Date("2026-01-02T03:04:05Z");
    const notAfter = new Date("2051-06-07T08:09:10Z"); // after 2049: GeneralizedTime
    const { certificates } = await ca.issue("spiffe://broker.org/webapp", {
      uris: ["spiffe://broker.org/webapp", "https://example.org/x"],
      dnsNames: ["broker-webapp", "localhost"],
      notBefore,
      notAfter,
    });
    const leaf = certificates[0];
    assert.ok(leaf);
    const details = certificateDetails(leaf);
    assert.equal(details.isCa, false);
    assert.deepEqual(details.uris, ["spiffe://broker.org/webapp", "https://example.org/x"]);
    assert.deepEqual(details.dnsNames, ["broker-webapp", "localhost"]);
    assert.deepEqual(details.keyUsage, {
      digitalSignature: true,
      keyCertSign: false,
      cRLSign: false,
    });
    assert.equal(details.notBefore.toISOString(), notBefore.toISOString());
    assert.equal(details.notAfter.toISOString(), notAfter.toISOString());
  });

  it("reads a path length constraint and reports a missing keyUsage", async () => {
    const intermediate = await ca.createIntermediate({ pathLength: 1 });
    assert.equal(certificateDetails(intermediate.certificate).pathLength, 1);
    const { certificates } = await ca.issue("spiffe://broker.org/webapp", { keyUsage: {} });
    assert.ok(certificates[0]);
    assert.equal(certificateDetails(certificates[0]).keyUsage, undefined);
  });
});
