import { JwtBundle, JwtBundleSet } from "../bundle/jwtbundle.js";
import { X509Bundle, X509BundleSet } from "../bundle/x509bundle.js";
import { SpiffeError } from "../errors/spiffe-error.js";
import { messageOf } from "../internal/error-message.js";
import { type JwtSvid, parseInsecureJwtSvid } from "../jwtsvid/svid.js";
import { TrustDomain } from "../spiffeid/spiffeid.js";
import { X509Svid } from "../x509svid/svid.js";
import { verifyX509Svid } from "../x509svid/verify.js";
import type {
  RawJwtBundlesResponse,
  RawJwtSvidResponse,
  RawX509BundlesResponse,
  RawX509Svid,
  RawX509SvidResponse,
} from "./proto.js";

/** A Workload API response that cannot be used; the client discards it and keeps the stream. */
export class MalformedResponseError extends SpiffeError {}

/** What a parsed FetchX509SVID response carries (re-exported by client.ts as X509Context). */
export interface ParsedX509Context {
  svids: readonly X509Svid[];
  bundles: X509BundleSet;
}

/** Called for a part of a response that is skipped while the rest is still used. */
export type SkipReporter = (details: object, message: string) => void;

const MANDATORY_SVID_FIELDS = ["spiffe_id", "x509_svid", "x509_svid_key", "bundle"] as const;

function parseSvid(raw: RawX509Svid, index: number): X509Svid {
  const empty = MANDATORY_SVID_FIELDS.filter((name) => raw[name].length === 0);
  if (empty.length > 0) {
    throw new MalformedResponseError(
      "empty-field",
      `SVID #${index} has empty mandatory field(s): ${empty.join(", ")}`,
    );
  }
  let svid: X509Svid;
  try {
    svid = X509Svid.fromDer(raw.x509_svid, raw.x509_svid_key, raw.hint);
  } catch (error) {
    throw new MalformedResponseError(
      "bad-svid",
      `SVID #${index} (${raw.spiffe_id}) cannot be parsed: ${messageOf(error)}`,
      { cause: error },
    );
  }
  if (svid.id.toString() !== raw.spiffe_id) {
    throw new MalformedResponseError(
      "id-mismatch",
      `SVID #${index}: spiffe_id ${raw.spiffe_id} differs from the certificate's ID ${svid.id}`,
    );
  }
  return svid;
}

/** Map keys are trust domain IDs (`spiffe://example.org`); anything else is skipped. */
function bundleKey(key: string, skip: SkipReporter): TrustDomain | undefined {
  try {
    if (!key.startsWith("spiffe://")) throw new Error("expected spiffe://<trust domain>");
    return TrustDomain.parse(key);
  } catch (error) {
    skip({ key, reason: messageOf(error) }, "skipping a bundle whose key is not a trust domain ID");
    return undefined;
  }
}

function addBundle(
  bundles: Map<string, X509Bundle>,
  key: string,
  der: Buffer,
  skip: SkipReporter,
): void {
  const trustDomain = bundleKey(key, skip);
  if (trustDomain === undefined) return;
  if (bundles.has(trustDomain.name)) {
    // The SVID's own trust domain bundle came with the SVID; a second copy must not replace it.
    skip({ trustDomain: trustDomain.name }, "skipping a second bundle for the same trust domain");
    return;
  }
  try {
    bundles.set(trustDomain.name, X509Bundle.fromDer(trustDomain, der));
  } catch (error) {
    skip({ trustDomain: trustDomain.name, reason: messageOf(error) }, "skipping a bad bundle");
  }
}

/** The bundle an SVID came with: the `bundle` field of its own entry in the response. */
function ownBundle(raw: RawX509Svid, svid: X509Svid, index: number): X509Bundle {
  try {
    return X509Bundle.fromDer(svid.id.trustDomain, raw.bundle);
  } catch (error) {
    throw new MalformedResponseError(
      "bad-bundle",
      `the bundle of SVID #${index} (${raw.spiffe_id}) cannot be parsed: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

/**
 * An SVID is served only if it would pass as a peer's: within its validity, and chaining
 * to its trust domain's bundle from the same response under the same RFC 5280 checks. A
 * broken or hostile response then cannot make the workload present garbage.
 */
function checkVerifies(svid: X509Svid, bundle: X509Bundle, index: number, now: Date): void {
  try {
    verifyX509Svid(svid.certificates, new X509BundleSet([bundle]), now);
  } catch (error) {
    throw new MalformedResponseError(
      "untrusted-svid",
      `SVID #${index} (${svid.id}) fails verification against the bundle in the same response: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

/**
 * Parses a FetchX509SVID response. Throws MalformedResponseError when the response as a
 * whole is unusable (no SVIDs, an SVID with an empty mandatory field, an SVID that breaks
 * the X.509-SVID rules or does not verify against its own bundle, an unparsable own
 * bundle); skips (and reports) only bad federated bundles.
 */
export function parseX509Context(
  raw: RawX509SvidResponse,
  skip: SkipReporter,
  now: Date = new Date(),
): ParsedX509Context {
  if (raw.svids.length === 0) {
    throw new MalformedResponseError("no-svids", "the response holds no SVIDs");
  }
  const svids = raw.svids.map(parseSvid);
  const bundles = new Map<string, X509Bundle>();
  raw.svids.forEach((rawSvid, index) => {
    const svid = svids[index] as X509Svid;
    const bundle = ownBundle(rawSvid, svid, index);
    checkVerifies(svid, bundle, index, now);
    // The first SVID of a trust domain brings its bundle; later ones do not replace it.
    if (!bundles.has(bundle.trustDomain.name)) bundles.set(bundle.trustDomain.name, bundle);
  });
  for (const [key, der] of Object.entries(raw.federated_bundles)) {
    addBundle(bundles, key, der, skip);
  }
  return { svids, bundles: new X509BundleSet(bundles.values()) };
}

/** Parses a FetchX509Bundles response; a response without one usable bundle is malformed. */
export function parseX509Bundles(raw: RawX509BundlesResponse, skip: SkipReporter): X509BundleSet {
  const bundles = new Map<string, X509Bundle>();
  for (const [key, der] of Object.entries(raw.bundles)) addBundle(bundles, key, der, skip);
  if (bundles.size === 0) {
    throw new MalformedResponseError("no-bundles", "the response holds no usable bundle");
  }
  return new X509BundleSet(bundles.values());
}

/**
 * Parses a FetchJWTBundles response: one JwtBundle per trust domain. A bundle that is not
 * a JWKS document is skipped (and reported); within a bundle, unusable keys are skipped
 * and reported while the others count. A bundle with no keys is kept: it means "trust
 * nothing" for that trust domain. A response without one usable bundle is malformed.
 */
export function parseJwtBundles(raw: RawJwtBundlesResponse, skip: SkipReporter): JwtBundleSet {
  const bundles: JwtBundle[] = [];
  for (const [key, document] of Object.entries(raw.bundles)) {
    const trustDomain = bundleKey(key, skip);
    if (trustDomain === undefined) continue;
    try {
      const bundle = JwtBundle.parse(trustDomain, document);
      for (const skipped of bundle.skipped) {
        skip({ trustDomain: trustDomain.name, ...skipped }, "skipping a JWT bundle key");
      }
      bundles.push(bundle);
    } catch (error) {
      skip(
        { trustDomain: trustDomain.name, reason: messageOf(error) },
        "skipping a bad JWT bundle",
      );
    }
  }
  if (bundles.length === 0) {
    throw new MalformedResponseError("no-bundles", "the response holds no usable JWT bundle");
  }
  return new JwtBundleSet(bundles);
}

/**
 * Parses a FetchJWTSVID response. Entries with an empty field, a token that is not a
 * JWT-SVID for `audience`, or a `sub` other than their `spiffe_id` are skipped (and
 * reported); a response with none left is malformed.
 */
export function parseJwtSvids(
  raw: RawJwtSvidResponse,
  audience: readonly string[],
  skip: SkipReporter,
): JwtSvid[] {
  const svids: JwtSvid[] = [];
  raw.svids.forEach((entry, index) => {
    if (entry.spiffe_id === "" || entry.svid === "") {
      skip({ index }, "skipping a JWT-SVID with an empty spiffe_id or svid");
      return;
    }
    try {
      const svid = parseInsecureJwtSvid(entry.svid, audience, entry.hint);
      if (svid.id.toString() !== entry.spiffe_id) {
        throw new Error(`its sub ${svid.id} differs from spiffe_id ${entry.spiffe_id}`);
      }
      svids.push(svid);
    } catch (error) {
      skip(
        { index, spiffeId: entry.spiffe_id, reason: messageOf(error) },
        "skipping a bad JWT-SVID",
      );
    }
  });
  if (svids.length === 0) {
    throw new MalformedResponseError("no-svids", "the response holds no usable JWT-SVID");
  }
  return svids;
}
