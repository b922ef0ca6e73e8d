import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { JwtBundle, JwtBundleSet } from "../bundle/jwtbundle.js";
import { TrustDomain } from "../spiffeid/spiffeid.js";
import { hmacToken, jwksOf, TestJwtKey, unsignedToken } from "../testing/jwt.js";
import {
  JWT_SVID_ALGORITHMS,
  JwtSvidError,
  type JwtSvidRule,
  parseAndValidateJwtSvid,
  parseInsecureJwtSvid,
} from "./svid.js";

const EXAMPLE = TrustDomain.parse("example.org");
const OTHER = TrustDomain.parse("other.org");
const AUD = "spiffe://example.org/api";
const SUB = "spiffe://example.org/workload";

const exampleKey = TestJwtKey.generate("ES256");
const otherKey = TestJwtKey.generate("ES256");
const bundles = new JwtBundleSet([
  new JwtBundle(EXAMPLE, [exampleKey.authority()]),
  new JwtBundle(OTHER, [otherKey.authority()]),
]);

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const out: Record<string, unknown> = {
    sub: SUB,
    aud: [AUD],
    iat: now,
    exp: now + 300,
    ...overrides,
  };
  for (const [name, value] of Object.entries(out)) if (value === undefined) delete out[name];
  return out;
}

async function refused(token: string, rule: JwtSvidRule, audience: string | string[] = AUD) {
  await assert.rejects(parseAndValidateJwtSvid(token, bundles, audience), (error: unknown) => {
    assert.ok(error instanceof JwtSvidError, `not a JwtSvidError: ${String(error)}`);
    assert.equal(error.code, rule, error.message);
    return true;
  });
}

describe("parseAndValidateJwtSvid", () => {
  test("accepts a valid token and reports its claims (positive control)", async () => {
    const svid = await parseAndValidateJwtSvid(exampleKey.sign(claims()), bundles, AUD);
    assert.equal(svid.id.toString(), SUB);
    assert.deepEqual(svid.audience, [AUD]);
    assert.equal(svid.algorithm, "ES256");
    assert.equal(svid.keyId, exampleKey.keyId);
    assert.ok(svid.expiresAt.getTime() > Date.now());
  });

  for (const alg of JWT_SVID_ALGORITHMS) {
    test(`accepts ${alg}`, async () => {
      const key = TestJwtKey.generate(alg);
      const set = new JwtBundleSet([new JwtBundle(EXAMPLE, [key.authority()])]);
      const svid = await parseAndValidateJwtSvid(key.sign(claims()), set, AUD);
      assert.equal(svid.algorithm, alg);
    });
  }

  test("refuses alg none, HMAC (also keyed with the public key) and EdDSA", async () => {
    await refused(unsignedToken(claims(), exampleKey.keyId), "unsupported-algorithm");
    await refused(
      hmacToken(claims(), "secret", "HS256", exampleKey.keyId),
      "unsupported-algorithm",
    );
    const pem = exampleKey.publicKey.export({ type: "spki", format: "pem" });
    await refused(hmacToken(claims(), pem, "HS256", exampleKey.keyId), "unsupported-algorithm");
    const ed = TestJwtKey.generate("EdDSA");
    const set = new JwtBundleSet([new JwtBundle(EXAMPLE, [ed.authority()])]);
    await assert.rejects(parseAndValidateJwtSvid(ed.sign(claims()), set, AUD), {
      code: "unsupported-algorithm",
    });
  });

  test("refuses an alg that does not fit the key", async () => {
    // ES256 signature under an RS256 header, and an ES384 header on a P-256 key.
    await refused(exampleKey.sign(claims(), { alg: "RS256" }), "bad-signature");
    await refused(exampleKey.sign(claims(), { alg: "ES384" }), "bad-signature");
  });

  test("typ: JWT, JOSE or none only; crit refused; kid optional", async () => {
    for (const typ of ["JWT", "JOSE", undefined]) {
      await parseAndValidateJwtSvid(exampleKey.sign(claims(), { typ }), bundles, AUD);
    }
    await refused(exampleKey.sign(claims(), { typ: "at+jwt" }), "unsupported-typ");
    await refused(exampleKey.sign(claims(), { crit: ["x"], x: true }), "unsupported-header");
    await parseAndValidateJwtSvid(exampleKey.sign(claims(), { kid: undefined }), bundles, AUD);
  });

  test("aud must be present and hold every expected audience; a single string is fine", async () => {
    await refused(exampleKey.sign(claims({ aud: undefined })), "missing-audience");
    await refused(exampleKey.sign(claims({ aud: [] })), "missing-audience");
    await refused(exampleKey.sign(claims({ aud: ["other"] })), "audience-mismatch");
    await refused(exampleKey.sign(claims()), "audience-mismatch", [AUD, "second"]);
    await parseAndValidateJwtSvid(exampleKey.sign(claims({ aud: AUD })), bundles, AUD);
    await parseAndValidateJwtSvid(exampleKey.sign(claims({ aud: ["x", AUD] })), bundles, AUD);
    await refused(exampleKey.sign(claims()), "missing-audience", []);
  });

  test("exp must be present and not past (30 s leeway); nbf not ahead", async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(exampleKey.sign(claims({ exp: undefined })), "missing-expiry");
    await refused(exampleKey.sign(claims({ exp: String(now + 60) })), "missing-expiry");
    await refused(exampleKey.sign(claims({ iat: now - 600, exp: now - 31 })), "expired");
    await parseAndValidateJwtSvid(
      exampleKey.sign(claims({ iat: now - 600, exp: now - 10 })),
      bundles,
      AUD,
    );
    await refused(exampleKey.sign(claims({ nbf: now + 300 })), "not-yet-valid");
    const later = await parseAndValidateJwtSvid(
      exampleKey.sign(claims({ exp: now + 60 })),
      bundles,
      AUD,
      {
        now: new Date((now + 120) * 1000),
        leewaySeconds: 0,
      },
    ).catch((error: JwtSvidError) => error.code);
    assert.equal(later, "expired");
  });

  test("sub must be a SPIFFE ID", async () => {
    await refused(exampleKey.sign(claims({ sub: undefined })), "bad-subject");
    await refused(exampleKey.sign(claims({ sub: "https://example.org/x" })), "bad-subject");
    await refused(exampleKey.sign(claims({ sub: "spiffe://example.org/a/../b" })), "bad-subject");
  });

  test("the signature counts only with the bundle of the subject's trust domain", async () => {
    // other.org's key, other.org's kid, but the subject is in example.org.
    await refused(otherKey.sign(claims()), "unknown-key");
    await refused(otherKey.sign(claims(), { kid: undefined }), "bad-signature");
    await refused(exampleKey.sign(claims({ sub: "spiffe://unknown.org/x" })), "no-bundle");
    await refused(TestJwtKey.generate().sign(claims()), "unknown-key");
    const svid = await parseAndValidateJwtSvid(
      otherKey.sign(claims({ sub: "spiffe://other.org/w" })),
      bundles,
      AUD,
    );
    assert.equal(svid.id.trustDomain.name, "other.org");
  });

  test("an empty bundle trusts nothing", async () => {
    const set = new JwtBundleSet([new JwtBundle(EXAMPLE, [])]);
    await assert.rejects(
      parseAndValidateJwtSvid(exampleKey.sign(claims(), { kid: undefined }), set, AUD),
      {
        code: "bad-signature",
      },
    );
  });

  test("refuses tampering and anything but a compact JWS", async () => {
    const token = exampleKey.sign(claims());
    const [h, p, s] = token.split(".") as [string, string, string];
    const sig = Buffer.from(s, "base64url");
    sig[sig.length >> 1] = (sig[sig.length >> 1] as number) ^ 1;
    await refused(`${h}.${p}.${sig.toString("base64url")}`, "bad-signature");
    const forged = Buffer.from(
      JSON.stringify(claims({ sub: "spiffe://example.org/admin" })),
    ).toString("base64url");
    await refused(`${h}.${forged}.${s}`, "bad-signature");
    await refused(`${h}.${p}`, "malformed");
    await refused(JSON.stringify({ protected: h, payload: p, signature: s }), "malformed");
    await refused(`${h}.${p.slice(0, 4)}!${p.slice(4)}.${s}`, "malformed");
    await refused(`${h}.${Buffer.from("{not json").toString("base64url")}.${s}`, "malformed");
    await refused("", "malformed");
  });
});

describe("parseInsecureJwtSvid", () => {
  test("reads a token without its signature, still by the JWT-SVID rules", () => {
    const token = TestJwtKey.generate().sign(claims());
    const svid = parseInsecureJwtSvid(token, AUD, "hint");
    assert.equal(svid.id.toString(), SUB);
    assert.equal(svid.hint, "hint");
    assert.equal(svid.toString(), token);
    assert.throws(() => parseInsecureJwtSvid(token, "other"), { code: "audience-mismatch" });
    assert.throws(() => parseInsecureJwtSvid(unsignedToken(claims())), {
      code: "unsupported-algorithm",
    });
  });
});

test("jwksOf and JwtBundle.parse agree", () => {
  const bundle = JwtBundle.parse(EXAMPLE, JSON.stringify(jwksOf([exampleKey])));
  assert.deepEqual(bundle.keyIds(), [exampleKey.keyId]);
});
