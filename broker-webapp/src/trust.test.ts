import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { TrustDomain, X509Bundle, X509BundleSet } from "@federation-demo/spiffe";
import { TestCa } from "@federation-demo/spiffe/testing";
import { authorityView, BundleHistory, issuingAuthority, trustJson } from "./trust.js";

const STOCKS = TrustDomain.parse("stocksmarket.org");
const QUOTES_ID = "spiffe://stocksmarket.org/quotes-service";

function bundleOf(...cas: TestCa[]): X509Bundle {
  return new X509Bundle(
    STOCKS,
    cas.map((ca) => ca.rootCertificate),
  );
}

describe("authorityView", () => {
  it("gives the first 8 bytes of the SHA-256 fingerprint and the not-after date", async () => {
    const ca = await TestCa.create("stocksmarket.org");
    const view = authorityView(ca.certificate);
    assert.match(view.fingerprint, /^([0-9A-F]{2}:){7}[0-9A-F]{2}$/);
    assert.ok(ca.certificate.fingerprint256.startsWith(view.fingerprint));
    assert.equal(view.notAfter.getTime(), new Date(ca.certificate.validTo).getTime());
  });
});

describe("issuingAuthority", () => {
  it("finds which of two authorities (a CA rotation) signed the leaf", async () => {
    const [oldCa, newCa] = await Promise.all([
      TestCa.create("stocksmarket.org"),
      TestCa.create("stocksmarket.org"),
    ]);
    const bundle = bundleOf(oldCa, newCa);
    const fromOld = await oldCa.issue(QUOTES_ID);
    const fromNew = await newCa.issue(QUOTES_ID);
    assert.equal(issuingAuthority(fromOld.certificates, bundle), oldCa.rootCertificate);
    assert.equal(issuingAuthority(fromNew.certificates, bundle), newCa.rootCertificate);
  });

  it("walks to the top of a chain with an intermediate", async () => {
    const root = await TestCa.create("stocksmarket.org");
    const intermediate = await root.createIntermediate();
    const svid = await intermediate.issue(QUOTES_ID);
    assert.equal(issuingAuthority(svid.certificates, bundleOf(root)), root.rootCertificate);
  });

  it("is undefined with no bundle or an authority outside it (same names, other key)", async () => {
    const [ca, impostor] = await Promise.all([
      TestCa.create("stocksmarket.org"),
      TestCa.create("stocksmarket.org"),
    ]);
    const svid = await impostor.issue(QUOTES_ID);
    assert.equal(issuingAuthority(svid.certificates, bundleOf(ca)), undefined);
    assert.equal(issuingAuthority(svid.certificates, undefined), undefined);
    assert.equal(issuingAuthority([], bundleOf(ca)), undefined);
  });
});

describe("BundleHistory", () => {
  it("records when each trust domain's authorities change, not when they are re-sent", async () => {
    const [oldCa, newCa] = await Promise.all([
      TestCa.create("stocksmarket.org"),
      TestCa.create("stocksmarket.org"),
    ]);
    let now = new Date("2026-01-02T03:00:00Z");
    const history = new BundleHistory(() => now);
    assert.deepEqual(history.view(), []);

    history.update(new X509BundleSet([bundleOf(oldCa)]));
    now = new Date("2026-01-02T03:01:00Z");
    // The same authorities again, as fresh objects (the agent re-sends them).
    history.update(
      new X509BundleSet([new X509Bundle(STOCKS, [new X509Certificate(oldCa.rootCertificate.raw)])]),
    );
    assert.equal(history.view()[0]?.changedAt.toISOString(), "2026-01-02T03:00:00.000Z");

    // Withdrawn and given back unchanged: still no change.
    history.update(new X509BundleSet());
    assert.deepEqual(history.view(), [], "a withdrawn bundle is not shown");
    history.update(new X509BundleSet([bundleOf(oldCa)]));
    assert.equal(history.view()[0]?.changedAt.toISOString(), "2026-01-02T03:00:00.000Z");

    now = new Date("2026-01-02T03:02:00Z");
    history.update(new X509BundleSet([bundleOf(oldCa, newCa)]));
    const [stocks] = history.view();
    assert.equal(stocks?.trustDomain, "stocksmarket.org");
    assert.equal(stocks?.changedAt.toISOString(), "2026-01-02T03:02:00.000Z");
    assert.deepEqual(
      stocks?.authorities.map((a) => a.fingerprint),
      [
        authorityView(oldCa.rootCertificate).fingerprint,
        authorityView(newCa.rootCertificate).fingerprint,
      ],
    );
  });

  it("serializes for /healthz with ISO dates and a null issuer before any connection", async () => {
    const ca = await TestCa.create("stocksmarket.org");
    const history = new BundleHistory(() => new Date("2026-01-02T03:00:00Z"));
    history.update(new X509BundleSet([bundleOf(ca)]));
    const authority = authorityView(ca.rootCertificate);
    assert.deepEqual(trustJson({ bundles: history.view(), quotesIssuer: undefined }), {
      bundles: [
        {
          trustDomain: "stocksmarket.org",
          changedAt: "2026-01-02T03:00:00.000Z",
          authorities: [
            { sha256: authority.fingerprint, notAfter: authority.notAfter.toISOString() },
          ],
        },
      ],
      quotesServiceIssuer: null,
    });
    assert.deepEqual(
      trustJson({ bundles: [], quotesIssuer: { trustDomain: "stocksmarket.org", authority } }),
      {
        bundles: [],
        quotesServiceIssuer: {
          trustDomain: "stocksmarket.org",
          authority: { sha256: authority.fingerprint, notAfter: authority.notAfter.toISOString() },
        },
      },
    );
  });
});
