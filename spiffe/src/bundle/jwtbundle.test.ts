import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TrustDomain } from "../spiffeid/spiffeid.js";
import { TestCa } from "../testing/ca.js";
import { jwksOf, TestJwtKey } from "../testing/jwt.js";
import { JwtBundle, JwtBundleSet } from "./jwtbundle.js";
import { SpiffeBundle } from "./spiffebundle.js";

const EXAMPLE = TrustDomain.parse("example.org");
const OTHER = TrustDomain.parse("other.org");
const k1 = TestJwtKey.generate("ES256", "k1");
const k2 = TestJwtKey.generate("RS256", "k2");

describe("JwtBundle", () => {
  test("parses a JWKS document; keys without use count (SPIRE's Workload API sends none)", () => {
    const bundle = JwtBundle.parse(EXAMPLE, JSON.stringify({ keys: [k1.jwk(), k2.jwk(null)] }));
    assert.deepEqual(bundle.keyIds(), ["k1", "k2"]);
    assert.ok(bundle.findJwtAuthority("k1")?.publicKey.equals(k1.publicKey));
    assert.equal(bundle.skipped.length, 0);
  });

  test("skips unusable keys and keeps the rest", () => {
    const document = jwksOf(
      [k1],
      { kty: "SCTS-UNKNOWN", kid: "u", use: "jwt-svid" },
      { ...k2.jwk(), use: "x509-svid" },
      { ...k2.jwk(), use: "enc", kid: "enc" },
      { ...k2.jwk(), kid: undefined },
      { ...TestJwtKey.generate("ES256", "k1").jwk() },
      "not an object",
    );
    const bundle = JwtBundle.parse(EXAMPLE, Buffer.from(JSON.stringify(document)));
    assert.deepEqual(bundle.keyIds(), ["k1"]);
    assert.ok(bundle.findJwtAuthority("k1")?.publicKey.equals(k1.publicKey), "the first k1 stays");
    assert.deepEqual(
      bundle.skipped.map((entry) => entry.index),
      [1, 3, 4, 5, 6],
    );
  });

  test("an empty keys array is a valid bundle that trusts nothing", () => {
    assert.equal(JwtBundle.parse(EXAMPLE, '{"keys":[]}').size, 0);
  });

  test("refuses what is not a JWKS document", () => {
    for (const text of ["", "[]", "{}", '{"keys":{}}', "not json"]) {
      assert.throws(() => JwtBundle.parse(EXAMPLE, text), { code: "malformed-bundle" }, text);
    }
  });

  test("marshal round-trips; equals compares keys by ID", () => {
    const bundle = new JwtBundle(EXAMPLE, [k1.authority(), k2.authority()]);
    const again = JwtBundle.parse(EXAMPLE, bundle.marshal());
    assert.ok(again.equals(bundle));
    assert.ok(!again.equals(new JwtBundle(EXAMPLE, [k1.authority()])));
    assert.ok(!again.equals(new JwtBundle(OTHER, [k1.authority(), k2.authority()])));
    const swapped = new JwtBundle(EXAMPLE, [
      k1.authority(),
      { keyId: "k2", publicKey: k1.publicKey },
    ]);
    assert.ok(!again.equals(swapped));
  });

  test("JwtBundleSet never merges trust domains", () => {
    const set = new JwtBundleSet([
      new JwtBundle(EXAMPLE, [k1.authority()]),
      new JwtBundle(OTHER, [k2.authority()]),
    ]);
    assert.deepEqual(set.getJwtBundleForTrustDomain(EXAMPLE)?.keyIds(), ["k1"]);
    assert.deepEqual(set.getJwtBundleForTrustDomain(OTHER)?.keyIds(), ["k2"]);
    assert.equal(set.getJwtBundleForTrustDomain(TrustDomain.parse("x.org")), undefined);
    assert.deepEqual(
      set.bundles().map((bundle) => bundle.trustDomain.name),
      ["example.org", "other.org"],
    );
    assert.ok(set.equals(new JwtBundleSet(set.bundles())));
    assert.ok(!set.equals(new JwtBundleSet([new JwtBundle(EXAMPLE, [k1.authority()])])));
  });
});

describe("SpiffeBundle", async () => {
  const ca = await TestCa.create("example.org");
  const x5c = ca.certificate.raw.toString("base64");

  test("parses both halves, the refresh hint and the sequence; ignores unknown use and members", () => {
    const document = {
      keys: [
        { ...ca.certificate.publicKey.export({ format: "jwk" }), use: "x509-svid", x5c: [x5c] },
        k1.jwk(),
        { ...k2.jwk(), use: "wit-svid" },
        { ...k2.jwk(null), kid: "no-use" },
      ],
      spiffe_refresh_hint: 300,
      spiffe_sequence: 7,
      extra: { anything: true },
    };
    const bundle = SpiffeBundle.parse(EXAMPLE, JSON.stringify(document));
    assert.equal(bundle.x509Authorities.length, 1);
    assert.equal(bundle.x509Authorities[0]?.fingerprint256, ca.certificate.fingerprint256);
    assert.deepEqual(bundle.jwtBundle.keyIds(), ["k1"]);
    assert.equal(bundle.refreshHintSeconds, 300);
    assert.equal(bundle.sequenceNumber, 7);
    assert.equal(bundle.x509Bundle()?.certificates.length, 1);
  });

  test("marshal round-trips", () => {
    const bundle = new SpiffeBundle(EXAMPLE, {
      x509Authorities: [ca.certificate],
      jwtAuthorities: [k1.authority(), k2.authority()],
      refreshHintSeconds: 60,
      sequenceNumber: 3,
    });
    const again = SpiffeBundle.parse(EXAMPLE, bundle.marshal());
    assert.equal(again.x509Authorities[0]?.fingerprint256, ca.certificate.fingerprint256);
    assert.ok(again.jwtBundle.equals(bundle.jwtBundle));
    assert.equal(again.refreshHintSeconds, 60);
    assert.equal(again.sequenceNumber, 3);
    const empty = SpiffeBundle.parse(EXAMPLE, new SpiffeBundle(EXAMPLE).marshal());
    assert.equal(empty.x509Bundle(), undefined);
    assert.equal(empty.jwtBundle.size, 0);
  });

  test("skips an x509-svid key without exactly one readable certificate", () => {
    const document = {
      keys: [
        { use: "x509-svid", x5c: [x5c, x5c] },
        { use: "x509-svid", x5c: ["!!"] },
        { use: "x509-svid", x5c: [Buffer.from("junk").toString("base64")] },
        { use: "x509-svid", x5c: [x5c] },
      ],
    };
    const bundle = SpiffeBundle.parse(EXAMPLE, JSON.stringify(document));
    assert.equal(bundle.x509Authorities.length, 1);
    assert.deepEqual(
      bundle.skipped.map((entry) => entry.index),
      [0, 1, 2],
    );
  });

  test("refuses a malformed document or bad hint and sequence", () => {
    for (const text of [
      "{}",
      "null",
      '{"keys":[],"spiffe_refresh_hint":"5m"}',
      '{"keys":[],"spiffe_sequence":-1}',
    ]) {
      assert.throws(() => SpiffeBundle.parse(EXAMPLE, text), { code: "malformed-bundle" }, text);
    }
  });
});
