// Signature algorithms of a peer's path: the accepted list, the weak ones refused with
// their own code, and the signing keys. The mTLS roles are in conformance/rfc5280.test.ts.

import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, type X509Certificate } from "node:crypto";
import { before, describe, it } from "node:test";
import { X509Bundle, X509BundleSet } from "../bundle/x509bundle.js";
import { certificateDetails } from "../internal/certinfo.js";
import { judgeSignatureAlgorithm, signingKeyProblem } from "../internal/sigalg.js";
import { TrustDomain } from "../spiffeid/spiffeid.js";
import { TestCa } from "../testing/ca.js";
import { relabelLeafSignature } from "../testing/support/signatures.js";
import { VerificationError, type VerificationRule, verifyX509Svid } from "./verify.js";

const WEBAPP = "spiffe://broker.org/webapp";

function assertExact(verify: () => unknown, rule: VerificationRule, message: string): void {
  assert.throws(verify, (error: unknown) => {
    assert.ok(
      error instanceof VerificationError,
      `expected VerificationError, got ${String(error)}`,
    );
    assert.equal(error.code, rule, error.message);
    assert.equal(error.message, message);
    return true;
  });
}

describe("verifyX509Svid: signature algorithms", () => {
  let rsaCa: TestCa;
  let ecCa: TestCa;
  let bundles: X509BundleSet;
  before(async () => {
    rsaCa = await TestCa.create("broker.org", "rsa-2048");
    ecCa = await TestCa.create("broker.org", "ec-p256");
    bundles = new X509BundleSet([
      new X509Bundle(TrustDomain.parse("broker.org"), [rsaCa.certificate, ecCa.certificate]),
    ]);
  });

  for (const hash of ["SHA-256", "SHA-384", "SHA-512"] as const) {
    it(`accepts RSA PKCS#1 v1.5 with ${hash}`, async () => {
      const { certificates } = await rsaCa.issue(WEBAPP, { signatureHash: hash });
      assert.equal(verifyX509Svid(certificates, bundles).id.toString(), WEBAPP);
    });
  }

  it("accepts ECDSA P-256 with SHA-256 and SHA-384, and P-384 with SHA-384", async () => {
    for (const hash of ["SHA-256", "SHA-384"] as const) {
      const { certificates } = await ecCa.issue(WEBAPP, { signatureHash: hash });
      assert.equal(verifyX509Svid(certificates, bundles).id.toString(), WEBAPP);
    }
    const p384 = await TestCa.create("broker.org", "ec-p384");
    const { certificates } = await p384.issue(WEBAPP);
    assert.equal(
      certificateDetails(certificates[0] as X509Certificate).signatureAlgorithm.oid,
      "1.2.840.10045.4.3.3",
    );
    assert.equal(
      verifyX509Svid(certificates, new X509BundleSet([p384.bundle()])).id.toString(),
      WEBAPP,
    );
  });

  it("refuses a leaf signed with SHA-1 (RSA), though its signature verifies", async () => {
    const { certificates } = await rsaCa.issue(WEBAPP, { signatureHash: "SHA-1" });
    assert.ok(certificates[0]?.verify(rsaCa.certificate.publicKey), "a real SHA-1 signature");
    assertExact(
      () => verifyX509Svid(certificates, bundles),
      "weak-signature-algorithm",
      `peer certificate for ${WEBAPP} is signed with sha1WithRSAEncryption, a weak algorithm that is refused`,
    );
  });

  it("refuses a leaf signed with ecdsa-with-SHA1", async () => {
    const { certificates } = await ecCa.issue(WEBAPP, { signatureHash: "SHA-1" });
    assertExact(
      () => verifyX509Svid(certificates, bundles),
      "weak-signature-algorithm",
      `peer certificate for ${WEBAPP} is signed with ecdsa-with-SHA1, a weak algorithm that is refused`,
    );
  });

  it("refuses a leaf labelled md5WithRSAEncryption (and md2, md4)", async () => {
    const issued = await rsaCa.issue(WEBAPP);
    for (const [last, name] of [
      [4, "md5WithRSAEncryption"],
      [2, "md2WithRSAEncryption"],
      [3, "md4WithRSAEncryption"],
    ] as const) {
      const { certificates } = relabelLeafSignature(issued, last);
      assertExact(
        () => verifyX509Svid(certificates, bundles),
        "weak-signature-algorithm",
        `peer certificate for ${WEBAPP} is signed with ${name}, a weak algorithm that is refused`,
      );
    }
  });

  it("refuses a leaf labelled with an algorithm outside the list (sha224WithRSAEncryption)", async () => {
    const { certificates } = relabelLeafSignature(await rsaCa.issue(WEBAPP), 14);
    assert.throws(() => verifyX509Svid(certificates, bundles), {
      code: "unsupported-signature-algorithm",
      message: /signature algorithm 1\.2\.840\.113549\.1\.1\.14, which is not among the accepted/,
    });
  });

  it("refuses ECDSA with SHA-512, which SPIRE does not use", async () => {
    const { certificates } = await ecCa.issue(WEBAPP, { signatureHash: "SHA-512" });
    assert.throws(() => verifyX509Svid(certificates, bundles), {
      code: "unsupported-signature-algorithm",
    });
  });

  it("refuses an intermediate signed with SHA-1, and accepts it signed with SHA-256", async () => {
    const weak = await rsaCa.createIntermediate({ signatureHash: "SHA-1" });
    const strong = await rsaCa.createIntermediate();
    assert.equal(
      verifyX509Svid((await strong.issue(WEBAPP)).certificates, bundles).id.toString(),
      WEBAPP,
    );
    const weakChain = (await weak.issue(WEBAPP)).certificates;
    assert.throws(() => verifyX509Svid(weakChain, bundles), {
      code: "weak-signature-algorithm",
      message:
        /^intermediate certificate ".*" is signed with sha1WithRSAEncryption, a weak algorithm/,
    });
  });

  it("does not judge a bundle certificate's self-signature, which nothing relies on", async () => {
    const sha1Root = await TestCa.create("broker.org", "ec-p256", { signatureHash: "SHA-1" });
    assert.equal(
      certificateDetails(sha1Root.certificate).signatureAlgorithm.oid,
      "1.2.840.10045.4.1",
    );
    const { certificates } = await sha1Root.issue(WEBAPP);
    const own = new X509BundleSet([sha1Root.bundle()]);
    assert.equal(verifyX509Svid(certificates, own).id.toString(), WEBAPP);
  });

  it("refuses a path signed by a P-521 key", async () => {
    const p521 = await TestCa.create("broker.org", "ec-p521");
    const { certificates } = await p521.issue(WEBAPP, { signatureHash: "SHA-384" });
    assert.throws(() => verifyX509Svid(certificates, new X509BundleSet([p521.bundle()])), {
      code: "unsupported-signature-algorithm",
      message: /signed the chain with an ECDSA key on curve secp521r1; only P-256 and P-384/,
    });
  });
});

describe("judgeSignatureAlgorithm and signingKeyProblem", () => {
  const SHA256 = "2.16.840.1.101.3.4.2.1";
  const SHA384 = "2.16.840.1.101.3.4.2.2";
  const SHA512 = "2.16.840.1.101.3.4.2.3";
  const SHA1 = "1.3.14.3.2.26";
  const PSS = "1.2.840.113549.1.1.10";

  it("accepts RSASSA-PSS with SHA-256/384/512 and MGF1 of the same hash", () => {
    for (const [hash, name] of [
      [SHA256, "SHA-256"],
      [SHA384, "SHA-384"],
      [SHA512, "SHA-512"],
    ] as const) {
      assert.deepEqual(
        judgeSignatureAlgorithm({ oid: PSS, pss: { hash, mgfHash: hash } }),
        { verdict: "accepted" },
        name,
      );
    }
  });

  it("calls RSASSA-PSS with SHA-1 (its default) weak", () => {
    assert.deepEqual(judgeSignatureAlgorithm({ oid: PSS, pss: { hash: SHA1, mgfHash: SHA1 } }), {
      verdict: "weak",
      name: "RSASSA-PSS with SHA-1",
    });
  });

  it("refuses RSASSA-PSS with a mixed MGF1 hash, no MGF1, or no parameters read", () => {
    assert.equal(
      judgeSignatureAlgorithm({ oid: PSS, pss: { hash: SHA256, mgfHash: SHA512 } }).verdict,
      "unsupported",
    );
    assert.deepEqual(
      judgeSignatureAlgorithm({ oid: PSS, pss: { hash: SHA256, mgfHash: undefined } }),
      {
        verdict: "unsupported",
        name: `RSASSA-PSS with hash ${SHA256} and MGF1 hash (not MGF1)`,
      },
    );
    assert.equal(judgeSignatureAlgorithm({ oid: PSS }).verdict, "unsupported");
    // PSS parameters count only with the PSS OID.
    assert.deepEqual(
      judgeSignatureAlgorithm({ oid: "1.2.3.4", pss: { hash: SHA256, mgfHash: SHA256 } }),
      { verdict: "unsupported", name: "signature algorithm 1.2.3.4" },
    );
    assert.equal(
      judgeSignatureAlgorithm({ oid: PSS, pss: { hash: "1.2.3", mgfHash: "1.2.3" } }).verdict,
      "unsupported",
    );
  });

  it("accepts Ed25519 and the other listed OIDs; names the weak ones", () => {
    for (const oid of [
      "1.3.101.112",
      "1.2.840.10045.4.3.2",
      "1.2.840.10045.4.3.3",
      "1.2.840.113549.1.1.11",
      "1.2.840.113549.1.1.12",
      "1.2.840.113549.1.1.13",
    ]) {
      assert.deepEqual(judgeSignatureAlgorithm({ oid }), { verdict: "accepted" }, oid);
    }
    assert.deepEqual(judgeSignatureAlgorithm({ oid: "1.2.840.10040.4.3" }), {
      verdict: "weak",
      name: "dsa-with-sha1",
    });
    assert.deepEqual(judgeSignatureAlgorithm({ oid: "1.3.14.3.2.29" }), {
      verdict: "weak",
      name: "sha1WithRSASignature (OIW)",
    });
  });

  it("accepts RSA, RSA-PSS, Ed25519 and P-256/P-384 signing keys; refuses others", () => {
    const key = (type: string, options: object = {}): KeyObject =>
      (generateKeyPairSync as (t: string, o: object) => { publicKey: KeyObject })(type, options)
        .publicKey;
    assert.equal(signingKeyProblem(key("rsa", { modulusLength: 1024 })), undefined);
    assert.equal(signingKeyProblem(key("rsa-pss", { modulusLength: 1024 })), undefined);
    assert.equal(signingKeyProblem(key("ed25519")), undefined);
    assert.equal(signingKeyProblem(key("ec", { namedCurve: "P-256" })), undefined);
    assert.equal(signingKeyProblem(key("ec", { namedCurve: "P-384" })), undefined);
    assert.equal(
      signingKeyProblem(key("ec", { namedCurve: "secp256k1" })),
      "an ECDSA key on curve secp256k1; only P-256 and P-384 are accepted",
    );
    assert.equal(
      signingKeyProblem(key("ed448")),
      "a ed448 key; only ECDSA (P-256, P-384), RSA and Ed25519 keys are accepted",
    );
  });
});
