import type { X509Certificate } from "node:crypto";
import type { X509BundleSource } from "../bundle/x509bundle.js";
import { SpiffeError } from "../errors/spiffe-error.js";
import {
  type CertificateDetails,
  certificateDetails,
  OID_NAME_CONSTRAINTS,
} from "../internal/certinfo.js";
import { messageOf } from "../internal/error-message.js";
import { nameConstraintViolation } from "../internal/nameconstraints.js";
import { parseSpiffeId, type SpiffeId, SpiffeIdError } from "../spiffeid/spiffeid.js";

/** Which peer-validation rule a chain broke. */
export type VerificationRule =
  | "empty-chain"
  | "no-uri-san"
  | "multiple-uri-sans"
  | "invalid-spiffe-id"
  | "missing-path"
  | "leaf-is-ca"
  | "no-digital-signature"
  | "key-cert-sign"
  | "crl-sign"
  | "no-bundle"
  | "expired"
  | "not-yet-valid"
  | "untrusted"
  | "malformed-certificate"
  /** A certificate of the path has a critical extension the library does not process. */
  | "unhandled-critical-extension"
  /** A CA's nameConstraints exclude, or do not permit, a name of a certificate below it. */
  | "name-constraints";

/** A peer's chain that is not a valid X.509-SVID of its trust domain; `code` names the rule. */
export class VerificationError extends SpiffeError {
  /** The rule the chain broke. */
  declare readonly code: VerificationRule;

  constructor(rule: VerificationRule, message: string, options?: ErrorOptions) {
    super(rule, message, options);
  }
}

/** What verifyX509Svid proved about a peer's chain. */
export interface VerifiedX509Svid {
  /** The peer's SPIFFE ID, from the leaf's URI SAN. */
  readonly id: SpiffeId;
  /**
   * The path that verified, leaf first, then the intermediates it went through (only
   * those), ending with the certificate of the bundle that vouches for it. The last one
   * tells which of the trust domain's authorities issued the chain.
   */
  readonly chain: readonly X509Certificate[];
}

/** Longest chain a peer may send (leaf plus intermediates); SPIRE sends one or two. */
const MAX_PEER_CHAIN = 10;
/** Bound on issuer candidates tried, so crafted chains cannot make path building blow up. */
const MAX_ISSUER_CHECKS = 200;

/**
 * Authenticates a peer's X.509-SVID chain (leaf first, then any intermediates the peer
 * sent) against the bundle of the trust domain named in the leaf's SPIFFE ID, and only
 * that bundle. Returns the peer's SPIFFE ID and the path that verified it, or throws a
 * VerificationError naming the rule.
 * Besides the X.509-SVID rules it applies RFC 5280 path validation as Go's crypto/x509
 * does for go-spiffe: signatures, validity, cA and pathLenConstraint of every issuer, no
 * critical extension the library does not process on any certificate of the path, and
 * the name constraints (DNS, URI, IP) of every CA on the path.
 */
export function verifyX509Svid(
  chain: readonly X509Certificate[],
  bundles: X509BundleSource,
  now: Date = new Date(),
): VerifiedX509Svid {
  const leaf = chain[0];
  if (!leaf) throw new VerificationError("empty-chain", "the peer sent no certificate");
  if (chain.length > MAX_PEER_CHAIN) {
    throw new VerificationError(
      "untrusted",
      `the peer sent ${chain.length} certificates; at most ${MAX_PEER_CHAIN} are accepted`,
    );
  }
  const leafDetails = readDetails(leaf, "the peer's leaf certificate");
  const id = leafSpiffeId(leafDetails);
  const who = `peer certificate for ${id}`;

  if (leafDetails.isCa) {
    throw new VerificationError(
      "leaf-is-ca",
      `${who} is a CA certificate (basicConstraints cA true); an X.509-SVID leaf must not be a CA`,
    );
  }
  const usage = leafDetails.keyUsage;
  if (!usage?.digitalSignature) {
    throw new VerificationError(
      "no-digital-signature",
      usage
        ? `${who} has a keyUsage without digitalSignature`
        : `${who} has no keyUsage extension; an X.509-SVID leaf needs digitalSignature`,
    );
  }
  if (usage.keyCertSign) {
    throw new VerificationError(
      "key-cert-sign",
      `${who} has keyUsage keyCertSign, which an X.509-SVID leaf must not have`,
    );
  }
  if (usage.cRLSign) {
    throw new VerificationError(
      "crl-sign",
      `${who} has keyUsage cRLSign, which an X.509-SVID leaf must not have`,
    );
  }
  const leafExtensionProblem = criticalExtensionProblem(leafDetails, who);
  if (leafExtensionProblem) throw leafExtensionProblem;
  const validityProblem = checkValidity(leafDetails, now, who);
  if (validityProblem) throw validityProblem;

  const trustDomain = id.trustDomain;
  const bundle = bundles.getX509BundleForTrustDomain(trustDomain);
  if (!bundle) {
    throw new VerificationError(
      "no-bundle",
      `no X.509 bundle for trust domain ${trustDomain.name}, so ${id} cannot be authenticated (is that trust domain federated?)`,
    );
  }
  if (!bundle.trustDomain.equals(trustDomain)) {
    // A source handing out another trust domain's bundle would merge trust; refuse it.
    throw new VerificationError(
      "no-bundle",
      `asked for the bundle of ${trustDomain.name}, the bundle source returned ${bundle.trustDomain.name}'s`,
    );
  }

  const intermediates = chain.slice(1);
  intermediates.forEach((certificate, index) => {
    readDetails(certificate, `intermediate certificate ${index + 1} sent by ${id}`);
  });
  const search: PathSearch = {
    roots: bundle.certificates,
    intermediates,
    path: [leaf],
    now,
    checksLeft: MAX_ISSUER_CHECKS,
    nearMiss: undefined,
  };
  if (!chainsToBundle(leaf, 0, new Set(), search)) {
    throw (
      search.nearMiss ??
      new VerificationError(
        "untrusted",
        `${who} does not chain to the X.509 bundle of ${trustDomain.name} ` +
          `(${bundle.certificates.length} bundle certificate(s), ${intermediates.length} intermediate(s) sent); ` +
          "only that trust domain's bundle may vouch for its IDs",
      )
    );
  }
  return { id, chain: search.path };
}

function readDetails(certificate: X509Certificate, what: string): CertificateDetails {
  try {
    return certificateDetails(certificate);
  } catch (error) {
    throw new VerificationError(
      "malformed-certificate",
      `${what} is malformed: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
}

function leafSpiffeId(details: CertificateDetails): SpiffeId {
  const [uri, ...others] = details.uris;
  if (uri === undefined) {
    throw new VerificationError(
      "no-uri-san",
      "the peer's certificate has no URI SAN, so it carries no SPIFFE ID",
    );
  }
  if (others.length > 0) {
    throw new VerificationError(
      "multiple-uri-sans",
      `the peer's certificate has ${details.uris.length} URI SANs (${details.uris.join(", ")}); an X.509-SVID has exactly one`,
    );
  }
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uri);
  } catch (error) {
    if (!(error instanceof SpiffeIdError)) throw error;
    throw new VerificationError(
      "invalid-spiffe-id",
      `the peer's URI SAN is not a valid SPIFFE ID: ${error.message}`,
      { cause: error },
    );
  }
  if (id.path === "") {
    throw new VerificationError(
      "missing-path",
      `the peer's SPIFFE ID ${id} has no path; a workload's ID names the workload, e.g. ${id}/service`,
    );
  }
  return id;
}

function checkValidity(
  details: CertificateDetails,
  now: Date,
  who: string,
): VerificationError | undefined {
  if (now.getTime() < details.notBefore.getTime()) {
    return new VerificationError(
      "not-yet-valid",
      `${who} is not valid before ${details.notBefore.toISOString()} (now ${now.toISOString()})`,
    );
  }
  if (now.getTime() > details.notAfter.getTime()) {
    return new VerificationError(
      "expired",
      `${who} expired at ${details.notAfter.toISOString()} (now ${now.toISOString()})`,
    );
  }
  return undefined;
}

interface PathSearch {
  readonly roots: readonly X509Certificate[];
  readonly intermediates: readonly X509Certificate[];
  /**
   * The path built so far, leaf first: the certificates below the issuer being tried;
   * once a bundle certificate accepts it, that certificate ends it.
   */
  readonly path: X509Certificate[];
  readonly now: Date;
  checksLeft: number;
  /** The first issuer that signed but could not be used, to explain a failure. */
  nearMiss: VerificationError | undefined;
}

/**
 * Whether `issuer` signed `subject`. Node's checkIssued (OpenSSL) compares the names and
 * key identifiers and refuses an issuer whose keyUsage lacks keyCertSign; the signature
 * check makes it cryptographic.
 */
function issued(subject: X509Certificate, issuer: X509Certificate, search: PathSearch): boolean {
  search.checksLeft -= 1;
  if (search.checksLeft < 0) return false;
  if (!subject.checkIssued(issuer)) return false;
  try {
    return subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Names of OIDs that show up in messages. */
const EXTENSION_NAMES: Record<string, string> = {
  [OID_NAME_CONSTRAINTS]: "nameConstraints",
  "2.5.29.31": "cRLDistributionPoints",
  "2.5.29.32": "certificatePolicies",
  "2.5.29.33": "policyMappings",
  "2.5.29.36": "policyConstraints",
  "2.5.29.54": "inhibitAnyPolicy",
  "1.3.6.1.5.5.7.1.1": "authorityInfoAccess",
};

/** RFC 5280 4.2: a certificate with a critical extension we do not process is refused. */
function criticalExtensionProblem(
  details: CertificateDetails,
  who: string,
): VerificationError | undefined {
  const [oid] = details.unhandledCriticalExtensions;
  if (oid === undefined) return undefined;
  const name = EXTENSION_NAMES[oid];
  // certinfo lists a nameConstraints only when it holds name forms it cannot check.
  const constraints = oid === OID_NAME_CONSTRAINTS ? details.nameConstraints : undefined;
  const why = constraints
    ? ` holding ${constraints.unsupported.join(", ")}, which this library cannot check`
    : ", which this library does not process";
  return new VerificationError(
    "unhandled-critical-extension",
    `${who} has a critical extension ${oid}${name ? ` (${name})` : ""}${why}; RFC 5280 requires refusing it`,
  );
}

/**
 * RFC 5280 6.1.3: the names of every certificate below a CA with nameConstraints (the
 * leaf, and each intermediate that is not self-issued) must comply with them.
 */
function nameConstraintsProblem(
  issuerDetails: CertificateDetails,
  who: string,
  below: readonly X509Certificate[],
): VerificationError | undefined {
  const constraints = issuerDetails.nameConstraints;
  if (constraints === undefined) return undefined;
  for (const [index, certificate] of below.entries()) {
    // A CA's subject must not be empty (RFC 5280 4.1.2.6), so no exemption for one that is.
    const selfIssued = Boolean(certificate.subject) && certificate.subject === certificate.issuer;
    if (index > 0 && selfIssued) continue;
    const violation = nameConstraintViolation(certificateDetails(certificate), constraints);
    if (violation !== undefined) {
      const what = index === 0 ? "the leaf's" : `intermediate ${index}'s`;
      return new VerificationError(
        "name-constraints",
        `${who} has name constraints that ${what} names break: ${violation}`,
      );
    }
  }
  return undefined;
}

/** Why `issuer`, found `below` intermediates above the leaf, may not sign; undefined if fine. */
function issuerProblem(
  issuer: X509Certificate,
  below: number,
  role: string,
  search: PathSearch,
): VerificationError | undefined {
  const now = search.now;
  // Node gives an empty subject as undefined, though its types say string.
  const subject: string | undefined = issuer.subject;
  const who = `${role} "${(subject ?? "").replaceAll("\n", ", ")}"`;
  const details = readDetails(issuer, who);
  if (!details.isCa) {
    return new VerificationError(
      "untrusted",
      `${who} signed the chain but is not a CA (basicConstraints cA false)`,
    );
  }
  if (details.pathLength !== undefined && below > details.pathLength) {
    return new VerificationError(
      "untrusted",
      `${who} allows ${details.pathLength} intermediate(s) below it, the chain has ${below}`,
    );
  }
  return (
    checkValidity(details, now, who) ??
    criticalExtensionProblem(details, who) ??
    nameConstraintsProblem(details, who, search.path)
  );
}

/** Depth-first search for an issuer path from `subject` to a bundle certificate. */
function chainsToBundle(
  subject: X509Certificate,
  below: number,
  used: Set<X509Certificate>,
  search: PathSearch,
): boolean {
  for (const root of search.roots) {
    if (!issued(subject, root, search)) continue;
    const problem = issuerProblem(root, below, "bundle certificate", search);
    if (!problem) {
      search.path.push(root);
      return true;
    }
    search.nearMiss ??= problem;
  }
  for (const candidate of search.intermediates) {
    if (used.has(candidate) || !issued(subject, candidate, search)) continue;
    const problem = issuerProblem(candidate, below, "intermediate certificate", search);
    if (problem) {
      search.nearMiss ??= problem;
      continue;
    }
    used.add(candidate);
    search.path.push(candidate);
    if (chainsToBundle(candidate, below + 1, used, search)) return true;
    search.path.pop();
    used.delete(candidate);
  }
  return false;
}
