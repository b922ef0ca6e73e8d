import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { TrustDomain, verifyX509Svid, X509Bundle, X509BundleSet } from "spiffe-node";
import { TestCa } from "spiffe-node/testing";
import { authorityView, BundleHistory, issuerView, trustJson } from "./trust.js";

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

describe("issuerView", () => {
  it("names the authority at the top of the verified path (either side of a CA rotation)", async () => {
    const [oldCa, newCa] = await Promise.all([
      TestCa.create("stocksmarket.org"),
      TestCa.create("stocksmarket.org"),
    ]);
    const bundles = new X509BundleSet([bundleOf(oldCa, newCa)]);
    for (const ca of [oldCa, newCa]) {
      const { certificates } = await ca.issue(QUOTES_ID);
      const verified = verifyX509Svid(certificates, bundles);
      assert.deepEqual(issuerView(verified.id.trustDomain, verified.chain), {
        trustDomain: "stocksmarket.org",
        authority: authorityView(ca.rootCertificate),
      });
    }
  });

  it("looks past an intermediate to the bundle certificate", async () => {
    const root = await TestCa.create("stocksmarket.org");
    const intermediate = await root.createIntermediate();
    const { certificates } = await intermediate.issue(QUOTES_ID);
    const verified = verifyX509Svid(certificates, new X509BundleSet([bundleOf(root)]));
    assert.deepEqual(
      issuerView(STOCKS, verified.chain).authority,
      authorityView(root.rootCertificate),
    );
  });

  it("has no authority for an empty path", () => {
    assert.equal(issuerView(STOCKS, []).authority, undefined);
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
