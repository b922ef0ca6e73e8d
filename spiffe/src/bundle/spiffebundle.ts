import { X509Certificate } from "node:crypto";
import { messageOf } from "../internal/error-message.js";
import { isObject, jwkOf, jwksKeys } from "../internal/jwk.js";
import type { TrustDomain } from "../spiffeid/spiffeid.js";
import { type JwtAuthority, JwtBundle, type SkippedKey, X509_SVID_USE } from "./jwtbundle.js";
import { BundleError, X509Bundle } from "./x509bundle.js";

/** An optional non-negative integer member; anything else makes the document malformed. */
function optionalInteger(
  trustDomain: TrustDomain,
  document: Record<string, unknown>,
  name: string,
): number | undefined {
  const value = document[name];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new BundleError(
      "malformed-bundle",
      `SPIFFE bundle for ${trustDomain.name}: "${name}" must be a non-negative integer, not ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** An X.509 authority JWK: exactly one certificate in `x5c`. */
function x509AuthorityFromJwk(jwk: Record<string, unknown>): X509Certificate | { reason: string } {
  const x5c = jwk.x5c;
  if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== "string") {
    return { reason: 'an x509-svid key must hold exactly one certificate in "x5c"' };
  }
  try {
    // x5c is standard base64 (RFC 7517 §4.7), not base64url.
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(x5c[0])) throw new Error("x5c is not base64");
    return new X509Certificate(Buffer.from(x5c[0], "base64"));
  } catch (error) {
    return { reason: `the x5c certificate cannot be read: ${messageOf(error)}` };
  }
}

/** What a SpiffeBundle is made of; see SpiffeBundle. */
export interface SpiffeBundleParts {
  /** The CA certificates (`use: "x509-svid"`). */
  x509Authorities?: readonly X509Certificate[];
  /** The JWT signing keys (`use: "jwt-svid"`). */
  jwtAuthorities?: Iterable<JwtAuthority>;
  /** Seconds; how often a relying party should fetch the bundle again. */
  refreshHintSeconds?: number;
  /** Increases with each change of the bundle. */
  sequenceNumber?: number;
}

/**
 * A trust domain's bundle in the SPIFFE bundle format (SPIFFE Trust Domain and Bundle,
 * §4): a JWKS document whose keys say their `use`, `x509-svid` (a CA certificate in
 * `x5c`) or `jwt-svid` (a JWT signing key with its `kid`), plus the optional
 * `spiffe_refresh_hint` and `spiffe_sequence`. This is what bundle endpoints serve and
 * what `spire-server bundle show -format spiffe` prints.
 */
export class SpiffeBundle {
  /** Whose bundle this is. */
  readonly trustDomain: TrustDomain;
  /** The X.509 CA certificates. */
  readonly x509Authorities: readonly X509Certificate[];
  /** The JWT half, as a JwtBundle (possibly empty). */
  readonly jwtBundle: JwtBundle;
  /** `spiffe_refresh_hint`: seconds between fetches of the bundle, when given. */
  readonly refreshHintSeconds: number | undefined;
  /** `spiffe_sequence`: increases with each change, when given. */
  readonly sequenceNumber: number | undefined;
  /** Keys that were left out, and why (unknown `use` values are ignored without a note). */
  readonly skipped: readonly SkippedKey[];

  constructor(
    trustDomain: TrustDomain,
    parts: SpiffeBundleParts = {},
    skipped: readonly SkippedKey[] = [],
  ) {
    this.trustDomain = trustDomain;
    this.x509Authorities = parts.x509Authorities ?? [];
    this.jwtBundle = new JwtBundle(trustDomain, parts.jwtAuthorities ?? []);
    this.refreshHintSeconds = parts.refreshHintSeconds;
    this.sequenceNumber = parts.sequenceNumber;
    this.skipped = skipped;
  }

  /**
   * Parses a SPIFFE bundle document. Throws a BundleError ("malformed-bundle") when it is
   * not a JSON object with a `keys` array, or when `spiffe_refresh_hint` or
   * `spiffe_sequence` is not a non-negative integer. Keys with an unknown `use` and
   * members the format does not define are ignored, as the spec asks; an `x509-svid` or
   * `jwt-svid` key that cannot be read is skipped (listed in `skipped`) and the rest
   * counts.
   */
  static parse(trustDomain: TrustDomain, document: Uint8Array | string): SpiffeBundle {
    const keys = jwksKeys(trustDomain, document);
    const parsed = JSON.parse(
      typeof document === "string" ? document : Buffer.from(document).toString(),
    ) as Record<string, unknown>;
    const refreshHintSeconds = optionalInteger(trustDomain, parsed, "spiffe_refresh_hint");
    const sequenceNumber = optionalInteger(trustDomain, parsed, "spiffe_sequence");
    const x509Authorities: X509Certificate[] = [];
    const skipped: SkippedKey[] = [];
    keys.forEach((jwk, index) => {
      if (!isObject(jwk) || jwk.use !== X509_SVID_USE) return;
      const read = x509AuthorityFromJwk(jwk);
      if ("reason" in read) skipped.push({ index, reason: read.reason });
      else x509Authorities.push(read);
    });
    // Only jwt-svid keys are JWT authorities here; other `use` values are someone else's.
    const jwtKeys = keys.filter((jwk) => isObject(jwk) && jwk.use === "jwt-svid");
    const jwt = JwtBundle.fromJwks(trustDomain, jwtKeys, true);
    return new SpiffeBundle(
      trustDomain,
      {
        x509Authorities,
        jwtAuthorities: jwt.jwtAuthorities(),
        ...(refreshHintSeconds === undefined ? {} : { refreshHintSeconds }),
        ...(sequenceNumber === undefined ? {} : { sequenceNumber }),
      },
      [...skipped, ...jwt.skipped],
    );
  }

  /** The X.509 half as an X509Bundle, or undefined when the bundle has no CA certificate. */
  x509Bundle(): X509Bundle | undefined {
    return this.x509Authorities.length === 0
      ? undefined
      : new X509Bundle(this.trustDomain, this.x509Authorities);
  }

  /** The document in the SPIFFE bundle format (JSON). */
  marshal(): string {
    const keys: Record<string, unknown>[] = this.x509Authorities.map((certificate) => ({
      ...certificate.publicKey.export({ format: "jwk" }),
      use: X509_SVID_USE,
      x5c: [certificate.raw.toString("base64")],
    }));
    for (const authority of this.jwtBundle.jwtAuthorities()) {
      keys.push(jwkOf(authority.keyId, authority.publicKey, "jwt-svid"));
    }
    const document: Record<string, unknown> = { keys };
    if (this.refreshHintSeconds !== undefined)
      document.spiffe_refresh_hint = this.refreshHintSeconds;
    if (this.sequenceNumber !== undefined) document.spiffe_sequence = this.sequenceNumber;
    return JSON.stringify(document);
  }
}
