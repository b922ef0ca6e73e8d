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
import { judgeSignatureAlgorithm, signingKeyProblem } from "../internal/sigalg.js";
import type { SpiffeId } from "../spiffeid/spiffeid.js";
import { checkLeafUsage, type LeafRule, leafSpiffeId, type RuleFailure } from "./rules.js";

/** Which peer-validation rule a chain broke. */
export type VerificationRule =
  | "empty-chain"
  /** The leaf breaks one of the rules it shares with parsing one's own SVID (rules.ts). */
  | LeafRule
  | "no-bundle"
  | "expired"
  | "not-yet-valid"
  | "untrusted"
  | "malformed-certificate"
  /** A certificate of the path is signed with MD5, SHA-1 or another broken algorithm. */
  | "weak-signature-algorithm"
  /** A certificate of the path is signed with an algorithm or key outside the accepted list. */
  | "unsupported-signature-algorithm"
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
  const id = leafSpiffeId(leafDetails, "the peer's certificate", ruleBroken);
  const who = `peer certificate for ${id}`;
  checkLeafUsage(leafDetails, who, ruleBroken);
  const leafAlgorithmProblem = signatureAlgorithmProblem(leafDetails, who);
  if (leafAlgorithmProblem) throw leafAlgorithmProblem;
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

  if (bundle.certificates.length === 0) {
    throw new VerificationError(
      "untrusted",
      `the X.509 bundle of ${trustDomain.name} holds no authorities (the trust domain has no X.509 CA, e.g. it is JWT-only), so ${id} cannot be authenticated`,
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

const ruleBroken: RuleFailure = (rule, message, options) =>
  new VerificationError(rule, message, options);

/** Weak (MD5, SHA-1...) or unknown signature algorithms are refused; see internal/sigalg.ts. */
function signatureAlgorithmProblem(
  details: CertificateDetails,
  who: string,
): VerificationError | undefined {
  const judged = judgeSignatureAlgorithm(details.signatureAlgorithm);
  if (judged.verdict === "accepted") return undefined;
  if (judged.verdict === "weak") {
    return new VerificationError(
      "weak-signature-algorithm",
      `${who} is signed with ${judged.name}, a weak algorithm that is refused`,
    );
  }
  return new VerificationError(
    "unsupported-signature-algorithm",
    `${who} is signed with ${judged.name}, which is not among the accepted algorithms (ECDSA P-256/P-384 with SHA-256/384, RSA PKCS#1 v1.5 or PSS with SHA-256/384/512, Ed25519)`,
  );
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

const BUNDLE_ROLE = "bundle certificate";

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
  const keyProblem = signingKeyProblem(issuer.publicKey);
  if (keyProblem !== undefined) {
    return new VerificationError(
      "unsupported-signature-algorithm",
      `${who} signed the chain with ${keyProblem}`,
    );
  }
  return (
    checkValidity(details, now, who) ??
    // A bundle certificate is trusted because it is in the bundle, not for its
    // self-signature, which nothing verifies (RFC 5280 6.1): only the others are judged.
    (role === BUNDLE_ROLE ? undefined : signatureAlgorithmProblem(details, who)) ??
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
    const problem = issuerProblem(root, below, BUNDLE_ROLE, search);
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
