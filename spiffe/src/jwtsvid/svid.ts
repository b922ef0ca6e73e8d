import { compactVerify } from "jose";
import type { JwtAuthority, JwtBundleSource } from "../bundle/jwtbundle.js";
import { SpiffeError } from "../errors/spiffe-error.js";
import { messageOf } from "../internal/error-message.js";
import { parseSpiffeId, type SpiffeId } from "../spiffeid/spiffeid.js";

/** The rule of the JWT-SVID spec (or of JWS itself) a token breaks. */
export type JwtSvidRule =
  | "malformed"
  | "unsupported-algorithm"
  | "unsupported-typ"
  | "unsupported-header"
  | "bad-subject"
  | "missing-audience"
  | "audience-mismatch"
  | "missing-expiry"
  | "expired"
  | "not-yet-valid"
  | "no-bundle"
  | "unknown-key"
  | "bad-signature";

/** A JWT-SVID was refused; `code` names the rule it breaks. */
export class JwtSvidError extends SpiffeError {
  declare readonly code: JwtSvidRule;

  constructor(rule: JwtSvidRule, message: string, options?: ErrorOptions) {
    super(rule, message, options);
  }
}

/**
 * The only `alg` values a JWT-SVID may use (JWT-SVID §2.1). `none`, HMAC (a shared secret
 * has no place in a public bundle) and every other algorithm are refused.
 */
export const JWT_SVID_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "ES256",
  "ES384",
  "ES512",
  "PS256",
  "PS384",
  "PS512",
] as const;

/** One of JWT_SVID_ALGORITHMS. */
export type JwtSvidAlgorithm = (typeof JWT_SVID_ALGORITHMS)[number];

/** Leeway for `exp` and `nbf`, for clocks a little apart (go-spiffe allows the same order). */
export const DEFAULT_JWT_LEEWAY_SECONDS = 30;

/** A JWT-SVID's header parameters this library understands; any in `crit` is refused. */
const ALLOWED_TYP = new Set(["JWT", "JOSE"]);
const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** An upper bound far above any real JWT-SVID, so a huge input is refused before work. */
const MAX_TOKEN_LENGTH = 64 * 1024;

/** A parsed JWT-SVID: the token and what its claims say. */
export class JwtSvid {
  /** The `sub` claim: whose identity this is. */
  readonly id: SpiffeId;
  /** The `aud` claim, always as a list. */
  readonly audience: readonly string[];
  /** The `exp` claim. */
  readonly expiresAt: Date;
  /** The `iat` claim, when present. */
  readonly issuedAt: Date | undefined;
  /** Every claim, as decoded from the payload. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** The `alg` of the header. */
  readonly algorithm: JwtSvidAlgorithm;
  /** The `kid` of the header, when present. */
  readonly keyId: string | undefined;
  /** The compact token, as received: what goes into `Authorization: Bearer`. */
  readonly token: string;
  /** The Workload API's hint for this SVID (empty when not from the Workload API). */
  readonly hint: string;

  constructor(fields: {
    id: SpiffeId;
    audience: readonly string[];
    expiresAt: Date;
    issuedAt?: Date;
    claims: Record<string, unknown>;
    algorithm: JwtSvidAlgorithm;
    keyId?: string;
    token: string;
    hint?: string;
  }) {
    this.id = fields.id;
    this.audience = fields.audience;
    this.expiresAt = fields.expiresAt;
    this.issuedAt = fields.issuedAt;
    this.claims = fields.claims;
    this.algorithm = fields.algorithm;
    this.keyId = fields.keyId;
    this.token = fields.token;
    this.hint = fields.hint ?? "";
  }

  /** Whether `exp` has passed at `now` (without leeway). */
  isExpired(now: Date = new Date()): boolean {
    return now.getTime() >= this.expiresAt.getTime();
  }

  /** The token, so that a JwtSvid can be dropped into a header template directly. */
  toString(): string {
    return this.token;
  }
}

/** Options of parseAndValidateJwtSvid. */
export interface JwtValidationOptions {
  /** Allowed clock skew for `exp` and `nbf`, seconds (default 30). */
  leewaySeconds?: number;
  /** The time to validate at (default now); for tests. */
  now?: Date;
}

interface Decoded {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  algorithm: JwtSvidAlgorithm;
  keyId: string | undefined;
  id: SpiffeId;
  audience: string[];
  expiresAt: Date;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function decodePart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch (error) {
    throw new JwtSvidError("malformed", `the token's ${what} is not JSON: ${messageOf(error)}`);
  }
  if (!isObject(value))
    throw new JwtSvidError("malformed", `the token's ${what} is not a JSON object`);
  return value;
}

function isAlgorithm(alg: unknown): alg is JwtSvidAlgorithm {
  return typeof alg === "string" && (JWT_SVID_ALGORITHMS as readonly string[]).includes(alg);
}

/** Structure, header and the claims every JWT-SVID must carry; no signature, no time. */
function decode(token: string): Decoded {
  if (typeof token !== "string" || token.length === 0) {
    throw new JwtSvidError("malformed", "the token is empty");
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new JwtSvidError("malformed", `the token is longer than ${MAX_TOKEN_LENGTH} characters`);
  }
  const parts = token.split(".");
  // Only the compact serialization: JWS JSON serialization is not a JWT-SVID (JWT-SVID §5.1).
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) {
    throw new JwtSvidError(
      "malformed",
      "the token is not a JWS in compact serialization (three base64url parts joined by dots)",
    );
  }
  const [headerPart, payloadPart] = parts as [string, string, string];
  const header = decodePart(headerPart, "header");
  const claims = decodePart(payloadPart, "payload");
  if (!isAlgorithm(header.alg)) {
    throw new JwtSvidError(
      "unsupported-algorithm",
      `alg ${JSON.stringify(header.alg)} is not allowed for JWT-SVIDs (only ${JWT_SVID_ALGORITHMS.join(", ")})`,
    );
  }
  if (header.typ !== undefined && !ALLOWED_TYP.has(String(header.typ))) {
    throw new JwtSvidError(
      "unsupported-typ",
      `typ ${JSON.stringify(header.typ)} is not allowed (only JWT, JOSE, or none)`,
    );
  }
  if (header.crit !== undefined) {
    // No JWS extension is understood here, so any critical one must be refused (RFC 7515 §4.1.11).
    throw new JwtSvidError(
      "unsupported-header",
      `the token has critical header parameters ${JSON.stringify(header.crit)}`,
    );
  }
  if (header.kid !== undefined && typeof header.kid !== "string") {
    throw new JwtSvidError("malformed", "the token's kid is not a string");
  }
  if (typeof claims.sub !== "string") {
    throw new JwtSvidError("bad-subject", "the token has no sub claim");
  }
  let id: SpiffeId;
  try {
    id = parseSpiffeId(claims.sub);
  } catch (error) {
    throw new JwtSvidError("bad-subject", `sub is not a SPIFFE ID: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const aud = claims.aud;
  const audience = typeof aud === "string" ? [aud] : aud;
  if (
    !Array.isArray(audience) ||
    audience.length === 0 ||
    !audience.every((entry) => typeof entry === "string")
  ) {
    throw new JwtSvidError(
      "missing-audience",
      "the token has no aud claim (a string or a list of strings)",
    );
  }
  if (typeof claims.exp !== "number" || !Number.isFinite(claims.exp)) {
    throw new JwtSvidError("missing-expiry", "the token has no exp claim (a number of seconds)");
  }
  return {
    header,
    claims,
    algorithm: header.alg,
    keyId: header.kid as string | undefined,
    id,
    audience: audience as string[],
    expiresAt: new Date(claims.exp * 1000),
  };
}

function checkAudience(decoded: Decoded, expected: readonly string[]): void {
  const missing = expected.filter((entry) => !decoded.audience.includes(entry));
  if (missing.length > 0) {
    throw new JwtSvidError(
      "audience-mismatch",
      `the token is for ${JSON.stringify(decoded.audience)}, not for ${JSON.stringify(missing)}`,
    );
  }
}

function toSvid(decoded: Decoded, token: string, hint?: string): JwtSvid {
  const iat = decoded.claims.iat;
  return new JwtSvid({
    id: decoded.id,
    audience: decoded.audience,
    expiresAt: decoded.expiresAt,
    ...(typeof iat === "number" ? { issuedAt: new Date(iat * 1000) } : {}),
    claims: decoded.claims,
    algorithm: decoded.algorithm,
    ...(decoded.keyId === undefined ? {} : { keyId: decoded.keyId }),
    token,
    ...(hint === undefined ? {} : { hint }),
  });
}

function expectedAudience(audience: string | readonly string[]): readonly string[] {
  const list = typeof audience === "string" ? [audience] : audience;
  if (list.length === 0) {
    // Validating for no audience would accept a token meant for anyone.
    throw new JwtSvidError("missing-audience", "no expected audience given to validate against");
  }
  return list;
}

/** Verifies the signature with one key: undefined when it verifies, else why not. */
async function verifyWith(
  token: string,
  authority: JwtAuthority,
  algorithm: JwtSvidAlgorithm,
): Promise<string | undefined> {
  try {
    await compactVerify(token, authority.publicKey, { algorithms: [algorithm] });
    return undefined;
  } catch (error) {
    // Every failure refuses the token: a bad signature, and also a key of the wrong type
    // for `alg` (an RS256 header naming an EC key, an ES384 header naming a P-256 key),
    // which jose or WebCrypto report with errors of their own.
    return messageOf(error);
  }
}

/**
 * Parses and validates a JWT-SVID by the JWT-SVID spec, and returns it. Refuses, with a
 * JwtSvidError naming the rule: anything but a compact JWS; `alg` outside the nine RS, ES
 * and PS algorithms; `typ` other than JWT or JOSE; critical header parameters; a `sub`
 * that is not a SPIFFE ID; no `aud`, or one without every `audience` given; no `exp`,
 * `exp` past or `nbf` ahead (beyond the leeway); no bundle for the subject's trust
 * domain; a `kid` that bundle does not hold; a signature that does not verify. The
 * signature is checked against the bundle of the trust domain of `sub` and no other
 * (bundles are never merged). A token without `kid` is checked against each key of that
 * bundle.
 */
export async function parseAndValidateJwtSvid(
  token: string,
  bundles: JwtBundleSource,
  audience: string | readonly string[],
  options: JwtValidationOptions = {},
): Promise<JwtSvid> {
  const expected = expectedAudience(audience);
  const decoded = decode(token);
  const bundle = bundles.getJwtBundleForTrustDomain(decoded.id.trustDomain);
  if (bundle === undefined) {
    throw new JwtSvidError(
      "no-bundle",
      `no JWT bundle for trust domain ${decoded.id.trustDomain.name}, so its tokens cannot be verified`,
    );
  }
  let candidates: JwtAuthority[];
  if (decoded.keyId === undefined) {
    candidates = bundle.jwtAuthorities();
  } else {
    const authority = bundle.findJwtAuthority(decoded.keyId);
    if (authority === undefined) {
      throw new JwtSvidError(
        "unknown-key",
        `the bundle of ${decoded.id.trustDomain.name} has no key ${JSON.stringify(decoded.keyId)}`,
      );
    }
    candidates = [authority];
  }
  let failure: string | undefined = "the bundle has no keys";
  for (const authority of candidates) {
    failure = await verifyWith(token, authority, decoded.algorithm);
    if (failure === undefined) break;
  }
  if (failure !== undefined) {
    throw new JwtSvidError(
      "bad-signature",
      `the token's ${decoded.algorithm} signature does not verify with ${
        decoded.keyId === undefined ? "any key" : `key ${JSON.stringify(decoded.keyId)}`
      } of ${decoded.id.trustDomain.name}: ${failure}`,
    );
  }
  checkAudience(decoded, expected);
  const leewayMs = (options.leewaySeconds ?? DEFAULT_JWT_LEEWAY_SECONDS) * 1000;
  const nowMs = (options.now ?? new Date()).getTime();
  if (nowMs >= decoded.expiresAt.getTime() + leewayMs) {
    throw new JwtSvidError("expired", `the token expired at ${decoded.expiresAt.toISOString()}`);
  }
  const nbf = decoded.claims.nbf;
  if (nbf !== undefined) {
    if (typeof nbf !== "number")
      throw new JwtSvidError("malformed", "the token's nbf is not a number");
    if (nowMs + leewayMs < nbf * 1000) {
      throw new JwtSvidError(
        "not-yet-valid",
        `the token is not valid before ${new Date(nbf * 1000).toISOString()}`,
      );
    }
  }
  return toSvid(decoded, token);
}

/**
 * Parses a JWT-SVID without checking its signature or its time, for a token the
 * workload got from its own Workload API (which it trusts) and wants to read: whose it
 * is, for whom, until when. Refuses what is not a JWT-SVID at all, as
 * parseAndValidateJwtSvid does, and, when `audience` is given, a token not for it.
 * Never use it on a token a peer sent.
 */
export function parseInsecureJwtSvid(
  token: string,
  audience?: string | readonly string[],
  hint?: string,
): JwtSvid {
  const decoded = decode(token);
  if (audience !== undefined) checkAudience(decoded, expectedAudience(audience));
  return toSvid(decoded, token, hint);
}
