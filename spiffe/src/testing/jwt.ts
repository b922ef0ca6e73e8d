import {
  constants,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from "node:crypto";
import type { JwtAuthority } from "../bundle/jwtbundle.js";
import { jwkOf } from "../internal/jwk.js";
import type { JwtSvidAlgorithm } from "../jwtsvid/svid.js";

/** Test-only JWT signing keys and tokens, forged ones included. */

/** The algorithms a TestJwtKey can sign with (EdDSA: to show it is refused). */
export type TestJwtAlgorithm = JwtSvidAlgorithm | "EdDSA";

const HASH: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };
const CURVE: Record<string, string> = { ES256: "P-256", ES384: "P-384", ES512: "P-521" };

function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString("base64url");
}

/** `header.payload` of a token, from JSON values (an undefined header member is left out). */
export function signingInput(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
}

/** A JWT signing key, as a SPIRE server holds one, for tests. */
export class TestJwtKey {
  /** Its `kid`, in the bundle and in the header of what it signs. */
  readonly keyId: string;
  /** The `alg` it signs with. */
  readonly algorithm: TestJwtAlgorithm;
  /** The signing key. */
  readonly privateKey: KeyObject;
  /** The key the bundle publishes. */
  readonly publicKey: KeyObject;

  private constructor(
    keyId: string,
    algorithm: TestJwtAlgorithm,
    privateKey: KeyObject,
    publicKey: KeyObject,
  ) {
    this.keyId = keyId;
    this.algorithm = algorithm;
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** A fresh key for `algorithm` (default ES256, SPIRE's default) with a random key ID. */
  static generate(
    algorithm: TestJwtAlgorithm = "ES256",
    keyId = randomBytes(12).toString("base64url"),
  ): TestJwtKey {
    let pair: { privateKey: KeyObject; publicKey: KeyObject };
    if (algorithm === "EdDSA") pair = generateKeyPairSync("ed25519");
    else if (algorithm.startsWith("ES"))
      pair = generateKeyPairSync("ec", { namedCurve: CURVE[algorithm] as string });
    else pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    return new TestJwtKey(keyId, algorithm, pair.privateKey, pair.publicKey);
  }

  /** The key as a bundle authority. */
  authority(): JwtAuthority {
    return { keyId: this.keyId, publicKey: this.publicKey };
  }

  /** The public JWK, with `kid` and (unless null) `use` (default "jwt-svid"). */
  jwk(use: string | null = "jwt-svid"): Record<string, unknown> {
    return jwkOf(this.keyId, this.publicKey, use ?? undefined);
  }

  /** The signature of `input` with this key, by `algorithm` (default the key's own). */
  signatureOf(input: string, algorithm: TestJwtAlgorithm = this.algorithm): Buffer {
    if (algorithm === "EdDSA") return sign(null, Buffer.from(input), this.privateKey);
    const hash = HASH[algorithm.slice(2)] as string;
    if (algorithm.startsWith("ES")) {
      return sign(hash, Buffer.from(input), { key: this.privateKey, dsaEncoding: "ieee-p1363" });
    }
    if (algorithm.startsWith("PS")) {
      return sign(hash, Buffer.from(input), {
        key: this.privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      });
    }
    return sign(hash, Buffer.from(input), this.privateKey);
  }

  /**
   * A token with these claims. The header is `{alg, kid, typ: "JWT"}` with `header`
   * merged in (a member set to undefined is removed), signed as the resulting `alg` says
   * when this key can, else with the key's own algorithm (an alg/key mismatch).
   */
  sign(claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
    const merged: Record<string, unknown> = {
      alg: this.algorithm,
      kid: this.keyId,
      typ: "JWT",
      ...header,
    };
    for (const [name, value] of Object.entries(merged))
      if (value === undefined) delete merged[name];
    const input = signingInput(merged, claims);
    return `${input}.${b64url(this.signatureOf(input))}`;
  }

  /** A valid JWT-SVID for `subject` and `audience`, living `ttlSeconds` (default 300). */
  issue(
    subject: string,
    audience: string | readonly string[],
    ttlSeconds = 300,
    extraClaims = {},
  ): string {
    const now = Math.floor(Date.now() / 1000);
    return this.sign({
      sub: subject,
      aud: audience,
      iat: now,
      exp: now + ttlSeconds,
      ...extraClaims,
    });
  }
}

/** A JWKS document of these keys (and raw extra entries), as the Workload API sends. */
export function jwksOf(keys: readonly TestJwtKey[], ...extra: unknown[]): JwksDocument {
  return { keys: [...keys.map((key) => key.jwk()), ...extra] };
}

/** A JWKS document. */
export interface JwksDocument {
  /** The JWKs. */
  keys: unknown[];
}

/** An unsigned token (`alg: none`, empty signature): must always be refused. */
export function unsignedToken(claims: Record<string, unknown>, kid?: string): string {
  return `${signingInput({ alg: "none", typ: "JWT", ...(kid === undefined ? {} : { kid }) }, claims)}.`;
}

/** An HMAC token keyed with `secret` (the algorithm-confusion attack when it is a public key). */
export function hmacToken(
  claims: Record<string, unknown>,
  secret: string | Buffer,
  alg: "HS256" | "HS384" | "HS512" = "HS256",
  kid?: string,
): string {
  const input = signingInput({ alg, typ: "JWT", ...(kid === undefined ? {} : { kid }) }, claims);
  const mac = createHmac(HASH[alg.slice(2)] as string, secret)
    .update(input)
    .digest();
  return `${input}.${b64url(mac)}`;
}
