import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { before, describe, it } from "node:test";
import { createSecureContext } from "node:tls";
import { X509Bundle, X509BundleSet } from "../bundle/x509bundle.js";
import { SpiffeIdError } from "../spiffeid/spiffeid.js";
import { type KeyAlgorithm, TestCa } from "../testing/ca.js";
import { nameConstraintsExtension, unknownExtension } from "../testing/extensions.js";
import {
  SvidError,
  VerificationError,
  type VerificationRule,
  verifyX509Svid,
  X509Svid,
} from "./index.js";

const WEBAPP = "spiffe://broker.org/webapp";
const QUOTES = "spiffe://stocksmarket.org/quotes-service";
const HOUR_MS = 3_600_000;

function assertRule(verify: () => unknown, rule: VerificationRule, fragment?: string): void {
  assert.throws(verify, (error: unknown) => {
    assert.ok(
      error instanceof VerificationError,
      `expected VerificationError, got ${String(error)}`,
    );
    assert.equal(error.code, rule, error.message);
    if (fragment !== undefined) {
      assert.ok(error.message.includes(fragment), `"${error.message}" lacks "${fragment}"`);
    }
    return true;
  });
}

/** A refusal by its exact rule and whole message. */
function assertExact(verify: () => unknown, rule: VerificationRule, message: string): void {
  assert.throws(verify, (error: unknown) => {
    assert.ok(error instanceof VerificationError, `expected VerificationError, got ${error}`);
    assert.equal(error.code, rule);
    assert.equal(error.message, message);
    return true;
  });
}

function assertSvidError(parse: () => unknown, code: string, fragment: string): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof SvidError, `expected SvidError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(fragment), `"${error.message}" lacks "${fragment}"`);
    return true;
  });
}

for (const algorithm of ["ec-p256", "rsa-2048"] as KeyAlgorithm[]) {
  describe(`verifyX509Svid (${algorithm})`, () => {
    let brokerCa: TestCa;
    let stocksCa: TestCa;
    let bundles: X509BundleSet;
    before(async () => {
      brokerCa = await TestCa.create("broker.org", algorithm);
      stocksCa = await TestCa.create("stocksmarket.org", algorithm);
      bundles = new X509BundleSet([brokerCa.bundle(), stocksCa.bundle()]);
    });

    it("accepts a valid leaf signed by the trust domain's root", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP);
      assert.equal(verifyX509Svid(certificates, bundles).id.toString(), WEBAPP);
      const quotes = await stocksCa.issue(QUOTES);
      assert.equal(verifyX509Svid(quotes.certificates, bundles).id.toString(), QUOTES);
    });

    it("accepts a leaf plus the intermediate it was issued by", async () => {
      const intermediate = await brokerCa.createIntermediate();
      const { certificates } = await intermediate.issue(WEBAPP);
      assert.equal(certificates.length, 2);
      assert.equal(verifyX509Svid(certificates, bundles).id.toString(), WEBAPP);
    });

    it("accepts two intermediates sent in any order", async () => {
      const lower = await (await brokerCa.createIntermediate()).createIntermediate();
      const { certificates } = await lower.issue(WEBAPP);
      assert.equal(certificates.length, 3);
      const [leaf, first, second] = certificates;
      assert.ok(leaf && first && second);
      const verified = verifyX509Svid([leaf, second, first], bundles);
      assert.equal(verified.id.toString(), WEBAPP);
      // The verified path is in issuing order, whatever order the peer sent.
      assert.deepEqual(
        verified.chain.map((c) => c.fingerprint256),
        [leaf, first, second, brokerCa.certificate].map((c) => c.fingerprint256),
      );
    });

    it("rejects a chain missing the intermediate", async () => {
      const intermediate = await brokerCa.createIntermediate();
      const { certificates } = await intermediate.issue(WEBAPP);
      assertRule(() => verifyX509Svid(certificates.slice(0, 1), bundles), "untrusted");
    });

    it("accepts a peer that also sends the root", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP);
      const withRoot = [...certificates, brokerCa.certificate];
      const verified = verifyX509Svid(withRoot, bundles);
      assert.equal(verified.id.toString(), WEBAPP);
      // The root ends the path once, as the bundle's certificate.
      assert.equal(verified.chain.length, 2);
      assert.equal(verified.chain[1], brokerCa.bundle().certificates[0]);
    });

    it("accepts an extra DNS SAN", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, { dnsNames: ["broker-webapp"] });
      assert.equal(verifyX509Svid(certificates, bundles).id.toString(), WEBAPP);
    });

    it("rejects an expired leaf", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, {
        notBefore: new Date(Date.now() - 2 * HOUR_MS),
        notAfter: new Date(Date.now() - HOUR_MS),
      });
      assertRule(() => verifyX509Svid(certificates, bundles), "expired", `${WEBAPP} expired at`);
    });

    it("rejects a leaf that is not valid yet", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, {
        notBefore: new Date(Date.now() + HOUR_MS),
        notAfter: new Date(Date.now() + 2 * HOUR_MS),
      });
      assertRule(() => verifyX509Svid(certificates, bundles), "not-yet-valid", "not valid before");
    });

    it("checks validity against the given time", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP);
      const later = new Date(Date.now() + 2 * HOUR_MS);
      assertRule(() => verifyX509Svid(certificates, bundles, later), "expired");
      const earlier = new Date(Date.now() - HOUR_MS);
      assertRule(() => verifyX509Svid(certificates, bundles, earlier), "not-yet-valid");
    });

    it("rejects a chain through an expired intermediate", async () => {
      const intermediate = await brokerCa.createIntermediate({
        notBefore: new Date(Date.now() - 2 * HOUR_MS),
        notAfter: new Date(Date.now() - HOUR_MS),
      });
      const { certificates } = await intermediate.issue(WEBAPP);
      assertRule(
        () => verifyX509Svid(certificates, bundles),
        "expired",
        "intermediate certificate",
      );
    });

    it("rejects a chain through an intermediate that is not a CA", async () => {
      const notCa = await brokerCa.createIntermediate({ isCa: false });
      const { certificates } = await notCa.issue(WEBAPP);
      assertRule(() => verifyX509Svid(certificates, bundles), "untrusted", "is not a CA");
    });

    it("enforces an intermediate's path length constraint", async () => {
      const upper = await brokerCa.createIntermediate({ pathLength: 0 });
      const lower = await upper.createIntermediate();
      const { certificates } = await lower.issue(WEBAPP);
      assertRule(() => verifyX509Svid(certificates, bundles), "untrusted", "allows 0 intermediate");
      // Directly below the constrained intermediate is fine.
      const direct = await upper.issue(WEBAPP);
      assert.equal(verifyX509Svid(direct.certificates, bundles).id.toString(), WEBAPP);
    });

    it("rejects a chain to a bundle root that has expired", async () => {
      const oldRoot = await TestCa.create("broker.org", algorithm, {
        notBefore: new Date(Date.now() - 2 * HOUR_MS),
        notAfter: new Date(Date.now() + HOUR_MS / 2),
      });
      const { certificates } = await oldRoot.issue(WEBAPP);
      const held = new X509BundleSet([oldRoot.bundle()]);
      assert.equal(verifyX509Svid(certificates, held).id.toString(), WEBAPP);
      const later = new Date(Date.now() + (3 * HOUR_MS) / 4);
      assertRule(() => verifyX509Svid(certificates, held, later), "expired", "bundle certificate");
    });

    it("accepts a leaf under any root of a bundle holding several (CA rotation)", async () => {
      const next = await TestCa.create("broker.org", algorithm);
      const rotated = new X509BundleSet([
        X509Bundle.fromDer(
          next.bundle().trustDomain,
          Buffer.concat([brokerCa.bundleDer(), next.bundleDer()]),
        ),
      ]);
      const fromOld = await brokerCa.issue(WEBAPP);
      const fromNew = await next.issue(WEBAPP);
      const [oldRoot, newRoot] =
        rotated.getX509BundleForTrustDomain(next.bundle().trustDomain)?.certificates ?? [];
      const viaOld = verifyX509Svid(fromOld.certificates, rotated);
      const viaNew = verifyX509Svid(fromNew.certificates, rotated);
      assert.equal(viaOld.id.toString(), WEBAPP);
      assert.equal(viaNew.id.toString(), WEBAPP);
      // The path ends with the authority that issued it, so callers can tell them apart.
      assert.deepEqual(viaOld.chain, [fromOld.certificates[0], oldRoot]);
      assert.deepEqual(viaNew.chain, [fromNew.certificates[0], newRoot]);
    });

    it("rejects an overlong chain", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP);
      const leaf = certificates[0];
      assert.ok(leaf);
      assertRule(() => verifyX509Svid(Array(11).fill(leaf), bundles), "untrusted", "at most 10");
    });

    it("rejects a leaf from a CA that is not in the bundle, even with the same name", async () => {
      const impostor = await TestCa.create("broker.org", algorithm);
      assert.equal(impostor.certificate.subject, brokerCa.certificate.subject);
      const { certificates } = await impostor.issue(WEBAPP);
      assertRule(
        () => verifyX509Svid(certificates, bundles),
        "untrusted",
        "does not chain to the X.509 bundle of broker.org",
      );
    });

    it("rejects a leaf naming the trusted CA (name and key identifier) but signed by another key", async () => {
      const forger = await TestCa.create("broker.org", algorithm);
      const { certificates } = await brokerCa.issue(WEBAPP, { forgeSignatureWith: forger });
      const [leaf] = certificates;
      assert.ok(leaf);
      // Names and key identifiers match, so only the signature check can refuse it.
      assert.ok(leaf.checkIssued(brokerCa.certificate), "the leaf names the trusted CA");
      assert.ok(leaf.verify(forger.certificate.publicKey), "signed by the forger");
      assertRule(
        () => verifyX509Svid(certificates, bundles),
        "untrusted",
        "does not chain to the X.509 bundle of broker.org",
      );
    });

    it("rejects an intermediate naming the trusted CA but signed by another key", async () => {
      const forger = await TestCa.create("broker.org", algorithm);
      const intermediate = await brokerCa.createIntermediate({ forgeSignatureWith: forger });
      assert.ok(intermediate.certificate.checkIssued(brokerCa.certificate));
      const { certificates } = await intermediate.issue(WEBAPP);
      assert.equal(certificates.length, 2);
      assertRule(
        () => verifyX509Svid(certificates, bundles),
        "untrusted",
        "does not chain to the X.509 bundle of broker.org (1 bundle certificate(s), 1 intermediate(s) sent)",
      );
      // The same leaf under an honestly signed intermediate is fine.
      const honest = await brokerCa.createIntermediate();
      const accepted = await honest.issue(WEBAPP);
      assert.equal(verifyX509Svid(accepted.certificates, bundles).id.toString(), WEBAPP);
    });

    it("rejects a leaf that is a CA", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, { isCa: true });
      assertRule(() => verifyX509Svid(certificates, bundles), "leaf-is-ca", "basicConstraints");
    });

    it("rejects a leaf with keyUsage keyCertSign", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, {
        keyUsage: { digitalSignature: true, keyCertSign: true },
      });
      assertRule(() => verifyX509Svid(certificates, bundles), "key-cert-sign", "keyCertSign");
    });

    it("rejects a leaf with keyUsage cRLSign", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, {
        keyUsage: { digitalSignature: true, cRLSign: true },
      });
      assertRule(() => verifyX509Svid(certificates, bundles), "crl-sign", "cRLSign");
    });

    it("rejects a leaf whose keyUsage lacks digitalSignature", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, { keyUsage: { cRLSign: true } });
      assertRule(
        () => verifyX509Svid(certificates, bundles),
        "no-digital-signature",
        "without digitalSignature",
      );
    });

    it("rejects a leaf without a keyUsage extension", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, { keyUsage: {} });
      assertRule(
        () => verifyX509Svid(certificates, bundles),
        "no-digital-signature",
        "no keyUsage extension",
      );
    });

    it("rejects a leaf without any SAN", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, { uris: [] });
      assertRule(() => verifyX509Svid(certificates, bundles), "no-uri-san");
    });

    it("rejects a leaf with only a DNS SAN", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, { uris: [], dnsNames: ["webapp"] });
      assertRule(() => verifyX509Svid(certificates, bundles), "no-uri-san");
    });

    it("rejects a leaf with two URI SANs", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, {
        uris: [WEBAPP, "spiffe://broker.org/admin"],
      });
      assertRule(
        () => verifyX509Svid(certificates, bundles),
        "multiple-uri-sans",
        "spiffe://broker.org/admin",
      );
    });

    it("rejects a second identity hidden in a repeated SAN extension", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, {
        secondSanExtensionUris: ["spiffe://broker.org/admin"],
      });
      assertRule(
        () => verifyX509Svid(certificates, bundles),
        "malformed-certificate",
        "more than once",
      );
    });

    it("rejects a non-spiffe URI SAN", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP, {
        uris: ["https://broker.org/webapp"],
      });
      assertRule(() => verifyX509Svid(certificates, bundles), "invalid-spiffe-id", "spiffe://");
    });

    it("rejects a URI SAN breaking a SPIFFE ID rule", async () => {
      const { certificates } = await brokerCa.issue("spiffe://broker.org/web%41pp");
      assertRule(() => verifyX509Svid(certificates, bundles), "invalid-spiffe-id", "percent");
    });

    it("rejects an ID without a path", async () => {
      const { certificates } = await brokerCa.issue("spiffe://broker.org");
      assertRule(() => verifyX509Svid(certificates, bundles), "missing-path");
    });

    it("rejects a leaf naming broker.org signed by the stocksmarket.org CA", async () => {
      // Both bundles are held; the chain verifies against stocksmarket.org's, which may
      // not vouch for a broker.org ID.
      const { certificates } = await stocksCa.issue(WEBAPP);
      assert.ok(certificates[0]?.verify(stocksCa.certificate.publicKey));
      assertRule(() => verifyX509Svid(certificates, bundles), "untrusted", "broker.org");
    });

    it("rejects a broker.org leaf under a stocksmarket.org intermediate", async () => {
      const intermediate = await stocksCa.createIntermediate();
      const { certificates } = await intermediate.issue(WEBAPP);
      assertRule(() => verifyX509Svid(certificates, bundles), "untrusted");
    });

    it("rejects a trust domain without a bundle", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP);
      const onlyStocks = new X509BundleSet([stocksCa.bundle()]);
      assertRule(() => verifyX509Svid(certificates, onlyStocks), "no-bundle", "broker.org");
    });

    it("refuses a bundle source that answers with another trust domain's bundle", async () => {
      const { certificates } = await brokerCa.issue(WEBAPP);
      const confused = { getX509BundleForTrustDomain: () => brokerCa.bundle() };
      const relabelled = { getX509BundleForTrustDomain: () => stocksCa.bundle() };
      assert.equal(verifyX509Svid(certificates, confused).id.toString(), WEBAPP);
      assertRule(() => verifyX509Svid(certificates, relabelled), "no-bundle", "returned");
    });

    it("rejects an empty chain", () => {
      assertRule(() => verifyX509Svid([], bundles), "empty-chain");
    });
  });
}

describe("verifyX509Svid across key algorithms", () => {
  it("accepts an EC leaf under an RSA intermediate under an EC root", async () => {
    const root = await TestCa.create("broker.org", "ec-p256");
    const intermediate = await root.createIntermediate({ keyAlgorithm: "rsa-2048" });
    const { certificates } = await intermediate.issue(WEBAPP, { keyAlgorithm: "ec-p256" });
    const bundles = new X509BundleSet([root.bundle()]);
    assert.equal(verifyX509Svid(certificates, bundles).id.toString(), WEBAPP);
  });
});

describe("verifyX509Svid chain length", () => {
  it("accepts up to 10 certificates (a leaf and nine intermediates), not 11", async () => {
    const root = await TestCa.create("broker.org");
    let ca = root;
    for (let i = 0; i < 9; i++) ca = await ca.createIntermediate();
    const { certificates } = await ca.issue(WEBAPP);
    assert.equal(certificates.length, 10);
    const bundles = new X509BundleSet([root.bundle()]);
    assert.equal(verifyX509Svid(certificates, bundles).id.toString(), WEBAPP);
    const withRoot = [...certificates, root.certificate];
    assertRule(
      () => verifyX509Svid(withRoot, bundles),
      "untrusted",
      "the peer sent 11 certificates; at most 10 are accepted",
    );
  });
});

describe("verifyX509Svid path search", () => {
  it("stops after 200 issuer checks when a chain is built to make it explode", async (t) => {
    // Nine copies of one CA certificate (same name and key): each copy issued every
    // other, so without a bound the search would try every ordering of them (9! paths,
    // millions of signature checks) before giving up on a bundle none of them chain to.
    const renewed = await TestCa.create("broker.org");
    const copies = await Promise.all(Array.from({ length: 9 }, () => renewed.reissue()));
    const [leaf] = (await renewed.issue(WEBAPP)).certificates;
    assert.ok(leaf);
    const chain = [leaf, ...copies];
    const otherBroker = await TestCa.create("broker.org");

    // Count the issuer checks; past 1000 the bound is clearly gone, so stop the search.
    const checkIssued = X509Certificate.prototype.checkIssued;
    let checks = 0;
    t.mock.method(
      X509Certificate.prototype,
      "checkIssued",
      function (this: X509Certificate, issuer: X509Certificate) {
        checks += 1;
        if (checks > 1000) throw new Error("the path search went past 1000 issuer checks");
        return checkIssued.call(this, issuer);
      },
    );
    assertRule(
      () => verifyX509Svid(chain, new X509BundleSet([otherBroker.bundle()])),
      "untrusted",
      "does not chain to the X.509 bundle of broker.org (1 bundle certificate(s), 9 intermediate(s) sent)",
    );
    assert.equal(checks, 200, "the bound on issuer checks");
    // Control: the same chain verifies against its own CA.
    assert.equal(
      verifyX509Svid(chain, new X509BundleSet([renewed.bundle()])).id.toString(),
      WEBAPP,
    );
  });
});

describe("X509Svid", () => {
  let brokerCa: TestCa;
  before(async () => {
    brokerCa = await TestCa.create("broker.org");
  });

  it("parses the Workload API's DER chain and PKCS#8 key", async () => {
    const intermediate = await brokerCa.createIntermediate();
    const issued = await intermediate.issue(WEBAPP);
    const svid = X509Svid.fromDer(issued.chainDer, issued.keyDer, "internal");
    assert.equal(svid.id.toString(), WEBAPP);
    assert.equal(svid.hint, "internal");
    assert.equal(svid.certificates.length, 2);
    assert.equal(svid.leaf.fingerprint256, issued.certificates[0]?.fingerprint256);
    assert.equal(svid.expiresAt.getTime(), new Date(svid.leaf.validTo).getTime());
  });

  it("equals the same SVID re-sent, and no other", async () => {
    const issued = await brokerCa.issue(WEBAPP);
    const svid = issued.svid();
    assert.ok(svid.equals(svid));
    assert.ok(svid.equals(issued.svid()), "a new object with the same chain and key");
    assert.ok(!svid.equals(undefined));
    const rotated = (await brokerCa.issue(WEBAPP)).svid();
    assert.ok(!svid.equals(rotated), "same ID, new certificate");
    const intermediate = await brokerCa.createIntermediate();
    const longer = (await intermediate.issue(WEBAPP)).svid();
    assert.ok(!svid.equals(longer) && !longer.equals(svid), "chains of other lengths");
    const extended = new X509Svid(
      svid.id,
      [...svid.certificates, brokerCa.certificate],
      svid.privateKey,
    );
    assert.ok(!svid.equals(extended) && !extended.equals(svid), "the same chain and one more");
    const sameLeafOtherKey = new X509Svid(svid.id, svid.certificates, rotated.privateKey);
    assert.ok(!svid.equals(sameLeafOtherKey), "the same chain with another key");
    const sameLengthOtherTail = new X509Svid(
      longer.id,
      [longer.certificates[0] as X509Certificate, svid.leaf],
      longer.privateKey,
    );
    assert.ok(!longer.equals(sameLengthOtherTail), "the same leaf, another intermediate");
  });

  it("gives PEM that Node's TLS accepts and that parses back", async () => {
    const svid = (await brokerCa.issue(WEBAPP)).svid();
    const cert = svid.certificatesPem();
    const key = svid.privateKeyPem();
    assert.match(key, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.doesNotThrow(() => createSecureContext({ cert, key }));
    const again = X509Svid.fromPem(cert, key);
    assert.ok(again.id.equals(svid.id));
    assert.equal(again.certificatesPem(), cert);
  });

  it("accepts a SEC1 EC key in PEM", async () => {
    const svid = (await brokerCa.issue(WEBAPP)).svid();
    const sec1 = svid.privateKey.export({ type: "sec1", format: "pem" }).toString();
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);
    assert.equal(X509Svid.fromPem(svid.certificatesPem(), sec1).id.toString(), WEBAPP);
  });

  it("rejects an empty chain", async () => {
    const { keyDer } = await brokerCa.issue(WEBAPP);
    assertSvidError(
      () => X509Svid.fromDer(new Uint8Array(), keyDer),
      "empty-chain",
      "no certificates",
    );
  });

  it("rejects a garbage chain", async () => {
    const { keyDer } = await brokerCa.issue(WEBAPP);
    assertSvidError(
      () => X509Svid.fromDer(Buffer.from("garbage"), keyDer),
      "malformed-chain",
      "not concatenated DER certificates",
    );
  });

  it("rejects a key that is not PKCS#8 DER", async () => {
    const { chainDer, keyDer } = await brokerCa.issue(WEBAPP);
    const sec1Der = createPrivateKey({ key: keyDer, format: "der", type: "pkcs8" }).export({
      type: "sec1",
      format: "der",
    });
    assertSvidError(() => X509Svid.fromDer(chainDer, sec1Der), "malformed-key", "PKCS#8");
  });

  it("rejects a key that does not match the leaf", async () => {
    const one = await brokerCa.issue(WEBAPP);
    const other = await brokerCa.issue(WEBAPP);
    assertSvidError(
      () => X509Svid.fromDer(one.chainDer, other.keyDer),
      "key-mismatch",
      "does not match",
    );
  });

  it("rejects a leaf without a URI SAN", async () => {
    const { chainDer, keyDer } = await brokerCa.issue(WEBAPP, { uris: [] });
    assertSvidError(() => X509Svid.fromDer(chainDer, keyDer), "no-uri-san", "no URI SAN");
  });

  it("rejects a leaf with two URI SANs", async () => {
    const { chainDer, keyDer } = await brokerCa.issue(WEBAPP, {
      uris: [WEBAPP, "spiffe://broker.org/other"],
    });
    assertSvidError(() => X509Svid.fromDer(chainDer, keyDer), "multiple-uri-sans", "2 URI SANs");
  });

  it("rejects a non-spiffe URI SAN", async () => {
    const { chainDer, keyDer } = await brokerCa.issue("https://broker.org/webapp");
    assertSvidError(() => X509Svid.fromDer(chainDer, keyDer), "invalid-spiffe-id", "spiffe://");
  });

  it("rejects a trust domain ID as a workload identity", async () => {
    const { chainDer, keyDer } = await brokerCa.issue("spiffe://broker.org");
    assertSvidError(() => X509Svid.fromDer(chainDer, keyDer), "missing-path", "needs a path");
  });
});

describe("verifyX509Svid messages and edges", () => {
  let brokerCa: TestCa;
  let bundles: X509BundleSet;
  before(async () => {
    brokerCa = await TestCa.create("broker.org");
    bundles = new X509BundleSet([brokerCa.bundle()]);
  });

  it("says exactly which rule a leaf broke", async () => {
    assertExact(() => verifyX509Svid([], bundles), "empty-chain", "the peer sent no certificate");
    const noSan = await brokerCa.issue(WEBAPP, { uris: [] });
    assertExact(
      () => verifyX509Svid(noSan.certificates, bundles),
      "no-uri-san",
      "the peer's certificate has no URI SAN, so it carries no SPIFFE ID",
    );
    const twoSans = await brokerCa.issue(WEBAPP, { uris: [WEBAPP, "spiffe://broker.org/admin"] });
    assertExact(
      () => verifyX509Svid(twoSans.certificates, bundles),
      "multiple-uri-sans",
      "the peer's certificate has 2 URI SANs (spiffe://broker.org/webapp, spiffe://broker.org/admin); an X.509-SVID has exactly one",
    );
    const noPath = await brokerCa.issue("spiffe://broker.org");
    assertExact(
      () => verifyX509Svid(noPath.certificates, bundles),
      "missing-path",
      "the peer's SPIFFE ID spiffe://broker.org has no path; a workload's ID names the workload, e.g. spiffe://broker.org/service",
    );
    const stranger = await (await TestCa.create("broker.org")).issue(WEBAPP);
    assertExact(
      () => verifyX509Svid(stranger.certificates, bundles),
      "untrusted",
      "peer certificate for spiffe://broker.org/webapp does not chain to the X.509 bundle of broker.org (1 bundle certificate(s), 0 intermediate(s) sent); only that trust domain's bundle may vouch for its IDs",
    );
  });

  it("keeps the cause of an invalid SPIFFE ID and of a malformed leaf", async () => {
    const badId = await brokerCa.issue("spiffe://broker.org/a%41");
    assert.throws(
      () => verifyX509Svid(badId.certificates, bundles),
      (error: unknown) =>
        error instanceof VerificationError && error.cause instanceof SpiffeIdError,
    );
    const repeated = await brokerCa.issue(WEBAPP, { secondSanExtensionUris: [WEBAPP] });
    assert.throws(
      () => verifyX509Svid(repeated.certificates, bundles),
      (error: unknown) => {
        assert.ok(error instanceof VerificationError);
        assert.equal(
          error.message,
          "the peer's leaf certificate is malformed: extension 2.5.29.17 appears more than once",
        );
        assert.ok(error.cause instanceof Error);
        return true;
      },
    );
  });

  it("refuses a malformed certificate anywhere in what the peer sent, even one not needed", async () => {
    const { certificates } = await brokerCa.issue(WEBAPP);
    const malformed = (await brokerCa.issue(WEBAPP, { secondSanExtensionUris: [WEBAPP] }))
      .certificates[0];
    assert.ok(malformed);
    assertExact(
      () => verifyX509Svid([...certificates, malformed], bundles),
      "malformed-certificate",
      "intermediate certificate 1 sent by spiffe://broker.org/webapp is malformed: extension 2.5.29.17 appears more than once",
    );
  });

  it("names an unfit issuer by its subject on one line", async () => {
    const notCa = await brokerCa.createIntermediate({ isCa: false });
    const { certificates } = await notCa.issue(WEBAPP);
    assert.throws(
      () => verifyX509Svid(certificates, bundles),
      (error: unknown) =>
        error instanceof VerificationError &&
        /^intermediate certificate "CN=broker\.org intermediate \d+, O=TestCa" signed the chain but is not a CA \(basicConstraints cA false\)$/.test(
          error.message,
        ),
    );
  });

  it("a certificate is valid at the very first and the very last instant of its validity", async () => {
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const notAfter = new Date(notBefore.getTime() + HOUR_MS);
    const { certificates } = await brokerCa.issue(WEBAPP, { notBefore, notAfter });
    assert.equal(verifyX509Svid(certificates, bundles, notBefore).id.toString(), WEBAPP);
    assert.equal(verifyX509Svid(certificates, bundles, notAfter).id.toString(), WEBAPP);
    assertRule(
      () => verifyX509Svid(certificates, bundles, new Date(notBefore.getTime() - 1)),
      "not-yet-valid",
    );
    assertRule(
      () => verifyX509Svid(certificates, bundles, new Date(notAfter.getTime() + 1)),
      "expired",
    );
  });

  it("a signature check that fails with an error counts as a bad signature", async (t) => {
    const { certificates } = await brokerCa.issue(WEBAPP);
    t.mock.method(X509Certificate.prototype, "verify", () => {
      throw new Error("unsupported key");
    });
    assertRule(() => verifyX509Svid(certificates, bundles), "untrusted", "does not chain");
  });
});

describe("X509Svid details", () => {
  let brokerCa: TestCa;
  before(async () => {
    brokerCa = await TestCa.create("broker.org");
  });

  it("has no hint unless the Workload API gave one", async () => {
    const issued = await brokerCa.issue(WEBAPP);
    const svid = X509Svid.fromDer(issued.chainDer, issued.keyDer);
    assert.equal(svid.hint, "");
    assert.equal(X509Svid.fromPem(svid.certificatesPem(), svid.privateKeyPem()).hint, "");
    assert.equal(new X509Svid(svid.id, svid.certificates, svid.privateKey).hint, "");
  });

  it("an SVID built without certificates has no leaf", async () => {
    const svid = (await brokerCa.issue(WEBAPP)).svid();
    const empty = new X509Svid(svid.id, [], svid.privateKey);
    assertSvidErrorExact(
      () => empty.leaf,
      "empty-chain",
      "X.509-SVID for spiffe://broker.org/webapp has no certificates",
    );
  });

  it("says what is wrong with PEM input and keeps the cause", async () => {
    const svid = (await brokerCa.issue(WEBAPP)).svid();
    assertSvidErrorExact(
      () =>
        X509Svid.fromPem(
          "-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----\n",
          svid.privateKeyPem(),
        ),
      "malformed-chain",
      "X.509-SVID chain PEM is unreadable: expected only CERTIFICATE blocks in PEM, found a PRIVATE KEY block",
      true,
    );
    assertSvidErrorExact(
      () => X509Svid.fromPem(svid.certificatesPem(), "not a key"),
      "malformed-key",
      /^X\.509-SVID private key PEM is unreadable \(expected an unencrypted PKCS#8 or SEC1 key\): /,
      true,
    );
  });

  it("keeps the cause of unreadable DER, of a bad key and of an invalid ID", async () => {
    const issued = await brokerCa.issue(WEBAPP);
    assertSvidErrorExact(
      () => X509Svid.fromDer(Buffer.from("garbage"), issued.keyDer),
      "malformed-chain",
      /^X\.509-SVID chain is not concatenated DER certificates: /,
      true,
    );
    assertSvidErrorExact(
      () => X509Svid.fromDer(issued.chainDer, Buffer.from("nokey")),
      "malformed-key",
      /^X\.509-SVID private key is not unencrypted PKCS#8 DER: /,
      true,
    );
    const badId = await brokerCa.issue("spiffe://broker.org/a%41");
    assertSvidErrorExact(
      () => X509Svid.fromDer(badId.chainDer, badId.keyDer),
      "invalid-spiffe-id",
      /^X\.509-SVID leaf URI SAN is not a valid SPIFFE ID: invalid SPIFFE ID/,
      true,
    );
  });

  it("refuses a malformed leaf and lists every URI SAN of a leaf with several", async () => {
    const repeated = await brokerCa.issue(WEBAPP, { secondSanExtensionUris: [WEBAPP] });
    assertSvidErrorExact(
      () => X509Svid.fromDer(repeated.chainDer, repeated.keyDer),
      "malformed-chain",
      "X.509-SVID leaf certificate is malformed: extension 2.5.29.17 appears more than once",
      true,
    );
    const two = await brokerCa.issue(WEBAPP, { uris: [WEBAPP, "spiffe://broker.org/other"] });
    assertSvidErrorExact(
      () => X509Svid.fromDer(two.chainDer, two.keyDer),
      "multiple-uri-sans",
      "X.509-SVID leaf certificate has 2 URI SANs (spiffe://broker.org/webapp, spiffe://broker.org/other); exactly one is allowed",
    );
  });
});

function assertSvidErrorExact(
  parse: () => unknown,
  code: string,
  message: string | RegExp,
  cause = false,
): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof SvidError, `expected SvidError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    assert.equal(error.cause instanceof Error, cause, "carries the underlying error");
    return true;
  });
}

describe("verifyX509Svid: critical extensions and name constraints, word for word", () => {
  const ROOT = 'bundle certificate "CN=broker.org root, O=TestCa"';
  const REQUIRED = "RFC 5280 requires refusing it";
  let brokerCa: TestCa;
  let bundles: X509BundleSet;
  before(async () => {
    brokerCa = await TestCa.create("broker.org");
    bundles = new X509BundleSet([brokerCa.bundle()]);
  });

  it("names each well-known critical extension it does not process, and not an unknown one", async () => {
    const named: [string, string][] = [
      ["2.5.29.31", "cRLDistributionPoints"],
      ["2.5.29.32", "certificatePolicies"],
      ["2.5.29.33", "policyMappings"],
      ["2.5.29.36", "policyConstraints"],
      ["2.5.29.54", "inhibitAnyPolicy"],
      ["1.3.6.1.5.5.7.1.1", "authorityInfoAccess"],
    ];
    for (const [oid, name] of named) {
      // Only the flag matters: the leaf is refused before its contents would be read.
      const extension = { oid, critical: true, value: Buffer.from([0x30, 0x00]) };
      const { certificates } = await brokerCa.issue(WEBAPP, { extensions: [extension] });
      assertExact(
        () => verifyX509Svid(certificates, bundles),
        "unhandled-critical-extension",
        `peer certificate for ${WEBAPP} has a critical extension ${oid} (${name}), which this library does not process; ${REQUIRED}`,
      );
    }
    const { certificates } = await brokerCa.issue(WEBAPP, { extensions: [unknownExtension(true)] });
    assertExact(
      () => verifyX509Svid(certificates, bundles),
      "unhandled-critical-extension",
      `peer certificate for ${WEBAPP} has a critical extension 1.3.6.1.4.1.55555.1.1, which this library does not process; ${REQUIRED}`,
    );
  });

  it("says which name forms of a critical nameConstraints it cannot check", async () => {
    const intermediate = await brokerCa.createIntermediate({
      subject: "CN=constrained,O=TestCa",
      extensions: [
        nameConstraintsExtension({
          permitted: { email: ["x@broker.org"] },
          excluded: { registeredId: ["1.2.3.4"] },
        }),
      ],
    });
    const { certificates } = await intermediate.issue(WEBAPP);
    assertExact(
      () => verifyX509Svid(certificates, bundles),
      "unhandled-critical-extension",
      `intermediate certificate "CN=constrained, O=TestCa" has a critical extension 2.5.29.30 (nameConstraints) holding rfc822Name, registeredID, which this library cannot check; ${REQUIRED}`,
    );
  });

  it("gives an unknown critical extension's reason even on a CA whose name constraints it checks", async () => {
    const intermediate = await brokerCa.createIntermediate({
      subject: "CN=constrained,O=TestCa",
      extensions: [
        nameConstraintsExtension({ permitted: { uri: ["broker.org"] } }),
        unknownExtension(true),
      ],
    });
    const { certificates } = await intermediate.issue(WEBAPP);
    assertExact(
      () => verifyX509Svid(certificates, bundles),
      "unhandled-critical-extension",
      `intermediate certificate "CN=constrained, O=TestCa" has a critical extension 1.3.6.1.4.1.55555.1.1, which this library does not process; ${REQUIRED}`,
    );
  });

  describe("self-issued CA certificates (RFC 5280 6.1.3)", () => {
    let constrained: TestCa;
    let constrainedBundles: X509BundleSet;
    before(async () => {
      constrained = await TestCa.create("broker.org", "ec-p256", {
        extensions: [nameConstraintsExtension({ permitted: { uri: ["broker.org"] } })],
      });
      constrainedBundles = new X509BundleSet([constrained.bundle()]);
    });

    it("exempts a self-issued intermediate's names from its issuer's constraints", async () => {
      const renewed = await constrained.createIntermediate({
        subject: constrained.subjectName,
        uris: ["spiffe://stocksmarket.org"],
      });
      const { certificates } = await renewed.issue(WEBAPP);
      assert.equal(verifyX509Svid(certificates, constrainedBundles).id.toString(), WEBAPP);
    });

    it("does not exempt the same intermediate under another name", async () => {
      const other = await constrained.createIntermediate({
        subject: "CN=other,O=TestCa",
        uris: ["spiffe://stocksmarket.org"],
      });
      const { certificates } = await other.issue(WEBAPP);
      assertExact(
        () => verifyX509Svid(certificates, constrainedBundles),
        "name-constraints",
        `${ROOT} has name constraints that intermediate 1's names break: URI host stocksmarket.org is outside the permitted subtrees`,
      );
    });

    it("never exempts the leaf, even one whose subject is its issuer's", async () => {
      const elsewhere = await TestCa.create("broker.org", "ec-p256", {
        extensions: [nameConstraintsExtension({ permitted: { uri: ["other.org"] } })],
      });
      const { certificates } = await elsewhere.issue(WEBAPP, { subject: elsewhere.subjectName });
      assertExact(
        () => verifyX509Svid(certificates, new X509BundleSet([elsewhere.bundle()])),
        "name-constraints",
        `${ROOT} has name constraints that the leaf's names break: URI host broker.org is outside the permitted subtrees`,
      );
    });
  });
});
