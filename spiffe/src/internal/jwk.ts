import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import type { JwtAuthority } from "../bundle/jwtbundle.js";
import { BundleError } from "../bundle/x509bundle.js";
import type { TrustDomain } from "../spiffeid/spiffeid.js";
import { messageOf } from "./error-message.js";

// JWK helpers shared by the JWT and SPIFFE bundle readers (not part of the public API).

const JWT_SVID_USE = "jwt-svid";

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Members of a JWK that hold the public key, per key type; anything else is dropped. */
const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  RSA: ["n", "e"],
  EC: ["crv", "x", "y"],
  OKP: ["crv", "x"],
};

/**
 * The public key a JWK describes. Only the public members are read, so a JWK that also
 * carries private parts (`d`, ...) still yields just the public key; a `kty` Node cannot
 * import is an error the caller turns into a skipped key.
 */
export function publicKeyFromJwk(jwk: Record<string, unknown>): KeyObject {
  const kty = jwk.kty;
  if (typeof kty !== "string") throw new Error('the JWK has no "kty"');
  const members = PUBLIC_MEMBERS[kty];
  if (members === undefined) throw new Error(`unsupported key type "${kty}"`);
  const publicJwk: Record<string, unknown> = { kty };
  for (const name of members) {
    if (typeof jwk[name] !== "string") throw new Error(`the ${kty} JWK has no "${name}"`);
    publicJwk[name] = jwk[name];
  }
  return createPublicKey({ key: publicJwk as JsonWebKey, format: "jwk" });
}

/** The JWKS document's `keys`, or a BundleError when the document is not one. */
export function jwksKeys(trustDomain: TrustDomain, document: Uint8Array | string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof document === "string" ? document : Buffer.from(document).toString());
  } catch (error) {
    throw new BundleError(
      "malformed-bundle",
      `JWT bundle for ${trustDomain.name} is not JSON: ${messageOf(error)}`,
      { cause: error },
    );
  }
  if (!isObject(parsed) || !Array.isArray(parsed.keys)) {
    throw new BundleError(
      "malformed-bundle",
      `JWT bundle for ${trustDomain.name} is not a JWKS document (no "keys" array)`,
    );
  }
  return parsed.keys;
}

/**
 * Reads one JWK as a JWT authority, or says why it is not one. `requireUse`: a SPIFFE
 * bundle must say `use` (so a key without it is skipped); the Workload API's JWT bundles
 * are plain JWKS documents, which SPIRE sends without `use`.
 */
export function jwtAuthorityFromJwk(
  jwk: unknown,
  requireUse: boolean,
): JwtAuthority | { reason: string } {
  if (!isObject(jwk)) return { reason: "not a JSON object" };
  if (jwk.use !== undefined || requireUse) {
    if (jwk.use !== JWT_SVID_USE)
      return { reason: `use is ${JSON.stringify(jwk.use)}, not "jwt-svid"` };
  }
  if (typeof jwk.kid !== "string" || jwk.kid === "") return { reason: 'no "kid"' };
  try {
    return { keyId: jwk.kid, publicKey: publicKeyFromJwk(jwk) };
  } catch (error) {
    return { reason: messageOf(error) };
  }
}

/** The public JWK of a key, with its `kid` (and `use` when given). */
export function jwkOf(keyId: string, publicKey: KeyObject, use?: string): Record<string, unknown> {
  const jwk: Record<string, unknown> = { ...publicKey.export({ format: "jwk" }), kid: keyId };
  if (use !== undefined) jwk.use = use;
  return jwk;
}
