import type { KeyObject } from "node:crypto";
import { isObject, jwkOf, jwksKeys, jwtAuthorityFromJwk } from "../internal/jwk.js";
import type { TrustDomain } from "../spiffeid/spiffeid.js";

/** A JWT signing key of a trust domain: its key ID and public key. */
export interface JwtAuthority {
  /** The JWK `kid`; a JWT-SVID's header names the key it was signed with by this ID. */
  readonly keyId: string;
  /** The public key that verifies the signatures made with it. */
  readonly publicKey: KeyObject;
}

/** A JWK of a JWKS document that was left out, and why (the rest of the document is used). */
export interface SkippedKey {
  /** Position in the document's `keys`. */
  readonly index: number;
  /** Its `kid`, when it had one. */
  readonly keyId?: string;
  /** Why it was left out. */
  readonly reason: string;
}

/** The `use` of JWT-SVID signing keys in SPIFFE bundles (SPIFFE Trust Domain and Bundle §4.2.2). */
export const JWT_SVID_USE = "jwt-svid";
/** The `use` of X.509 CA certificates in SPIFFE bundles. */
export const X509_SVID_USE = "x509-svid";

/**
 * The JWT signing keys (authorities) of one trust domain, by key ID. An empty bundle is
 * valid and trusts nothing: a trust domain whose last key was removed must stop being
 * trusted rather than keep its old keys.
 */
export class JwtBundle {
  /** Whose keys these are. */
  readonly trustDomain: TrustDomain;
  /** Keys of the document that were left out, with the reason (unknown `kty`, `use` not jwt-svid...). */
  readonly skipped: readonly SkippedKey[];
  private readonly byKeyId: ReadonlyMap<string, JwtAuthority>;

  constructor(
    trustDomain: TrustDomain,
    authorities: Iterable<JwtAuthority>,
    skipped: readonly SkippedKey[] = [],
  ) {
    this.trustDomain = trustDomain;
    const byKeyId = new Map<string, JwtAuthority>();
    for (const authority of authorities) byKeyId.set(authority.keyId, authority);
    this.byKeyId = byKeyId;
    this.skipped = skipped;
  }

  /**
   * From a JWKS document as the Workload API sends it (FetchJWTBundles). Throws a
   * BundleError ("malformed-bundle") when the document is not JSON or has no `keys`
   * array; a key that cannot be used (unknown `kty`, `use` other than jwt-svid, no `kid`,
   * a second key with the same `kid`) is skipped and listed in `skipped`, and the rest
   * of the bundle counts, as the SPIFFE bundle format asks.
   */
  static parse(trustDomain: TrustDomain, document: Uint8Array | string): JwtBundle {
    return JwtBundle.fromJwks(trustDomain, jwksKeys(trustDomain, document), false);
  }

  /** Internal to the bundle folder: reads `keys`; see parse and SpiffeBundle.parse. */
  static fromJwks(
    trustDomain: TrustDomain,
    keys: readonly unknown[],
    requireUse: boolean,
  ): JwtBundle {
    const authorities = new Map<string, JwtAuthority>();
    const skipped: SkippedKey[] = [];
    keys.forEach((jwk, index) => {
      const kid = isObject(jwk) && typeof jwk.kid === "string" ? jwk.kid : undefined;
      if (isObject(jwk) && jwk.use === X509_SVID_USE) return; // the X.509 half of a SPIFFE bundle
      const read = jwtAuthorityFromJwk(jwk, requireUse);
      if ("reason" in read) {
        skipped.push({ index, ...(kid === undefined ? {} : { keyId: kid }), reason: read.reason });
      } else if (authorities.has(read.keyId)) {
        // Two keys under one kid: which one a token means is ambiguous, so keep the first.
        skipped.push({ index, keyId: read.keyId, reason: "a second key with the same kid" });
      } else {
        authorities.set(read.keyId, read);
      }
    });
    return new JwtBundle(trustDomain, authorities.values(), skipped);
  }

  /** The key with this ID, or undefined. */
  findJwtAuthority(keyId: string): JwtAuthority | undefined {
    return this.byKeyId.get(keyId);
  }

  /** Every key, sorted by key ID. */
  jwtAuthorities(): JwtAuthority[] {
    return [...this.byKeyId.values()].sort((a, b) => compare(a.keyId, b.keyId));
  }

  /** The key IDs, sorted. */
  keyIds(): string[] {
    return this.jwtAuthorities().map((authority) => authority.keyId);
  }

  /** How many keys it holds. */
  get size(): number {
    return this.byKeyId.size;
  }

  /** A JWKS document (JSON) of the keys, each with `kid` and `use: "jwt-svid"`. */
  marshal(): string {
    return JSON.stringify({
      keys: this.jwtAuthorities().map((a) => jwkOf(a.keyId, a.publicKey, JWT_SVID_USE)),
    });
  }

  /** Same trust domain, and the same keys under the same IDs. */
  equals(other: JwtBundle): boolean {
    if (!this.trustDomain.equals(other.trustDomain) || this.size !== other.size) return false;
    for (const [keyId, authority] of this.byKeyId) {
      const theirs = other.findJwtAuthority(keyId);
      if (theirs === undefined || !theirs.publicKey.equals(authority.publicKey)) return false;
    }
    return true;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Anything that can hand out the JWT bundle of a trust domain (a set, a JwtSource...). */
export interface JwtBundleSource {
  /** The bundle for `trustDomain`, or undefined when none is held. */
  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle | undefined;
}

/** JWT bundles keyed by trust domain. Never merges bundles across trust domains. */
export class JwtBundleSet implements JwtBundleSource {
  private readonly byName = new Map<string, JwtBundle>();

  /** A later bundle for the same trust domain replaces an earlier one (never merged). */
  constructor(bundles: Iterable<JwtBundle> = []) {
    for (const bundle of bundles) this.byName.set(bundle.trustDomain.name, bundle);
  }

  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle | undefined {
    return this.byName.get(trustDomain.name);
  }

  /** The bundles, sorted by trust domain name. */
  bundles(): JwtBundle[] {
    return [...this.byName.values()].sort((a, b) =>
      compare(a.trustDomain.name, b.trustDomain.name),
    );
  }

  /** How many trust domains have a bundle. */
  get size(): number {
    return this.byName.size;
  }

  /** The same trust domains, each with an equal bundle (see JwtBundle.equals). */
  equals(other: JwtBundleSet): boolean {
    if (this.size !== other.size) return false;
    for (const bundle of this.byName.values()) {
      const theirs = other.getJwtBundleForTrustDomain(bundle.trustDomain);
      if (theirs === undefined || !bundle.equals(theirs)) return false;
    }
    return true;
  }
}
