import type { CertificateDetails } from "../internal/certinfo.js";
import { messageOf } from "../internal/error-message.js";
import { parseSpiffeId, type SpiffeId } from "../spiffeid/spiffeid.js";

/**
 * The X.509-SVID leaf rules (X509-SVID sections 2, 4.1, 4.3), shared by peer verification
 * and the parsing of the workload's own SVID so that both name a broken rule alike.
 */
export type LeafRule =
  | "no-uri-san"
  | "multiple-uri-sans"
  | "invalid-spiffe-id"
  | "missing-path"
  | "leaf-is-ca"
  | "no-digital-signature"
  | "key-cert-sign"
  | "crl-sign";

/** Makes the caller's error type for a broken rule. */
export type RuleFailure = (rule: LeafRule, message: string, options?: ErrorOptions) => Error;

/**
 * The leaf's SPIFFE ID: exactly one URI SAN, a valid SPIFFE ID with a path. `who` names
 * the certificate in messages ("the peer's certificate").
 */
export function leafSpiffeId(
  details: CertificateDetails,
  who: string,
  fail: RuleFailure,
): SpiffeId {
  const [uri, ...others] = details.uris;
  if (uri === undefined) {
    throw fail("no-uri-san", `${who} has no URI SAN, so it carries no SPIFFE ID`);
  }
  if (others.length > 0) {
    throw fail(
      "multiple-uri-sans",
      `${who} has ${details.uris.length} URI SANs (${details.uris.join(", ")}); an X.509-SVID has exactly one`,
    );
  }
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uri);
  } catch (error) {
    throw fail(
      "invalid-spiffe-id",
      `${who} has a URI SAN that is not a valid SPIFFE ID: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
  if (id.path === "") {
    throw fail(
      "missing-path",
      `${who} carries ${id}, a SPIFFE ID without a path; a workload's ID names the workload, e.g. ${id}/service`,
    );
  }
  return id;
}

/** Not a CA; keyUsage digitalSignature, and neither keyCertSign nor cRLSign. */
export function checkLeafUsage(details: CertificateDetails, who: string, fail: RuleFailure): void {
  if (details.isCa) {
    throw fail(
      "leaf-is-ca",
      `${who} is a CA certificate (basicConstraints cA true); an X.509-SVID leaf must not be a CA`,
    );
  }
  const usage = details.keyUsage;
  if (!usage?.digitalSignature) {
    throw fail(
      "no-digital-signature",
      usage
        ? `${who} has a keyUsage without digitalSignature`
        : `${who} has no keyUsage extension; an X.509-SVID leaf needs digitalSignature`,
    );
  }
  if (usage.keyCertSign) {
    throw fail(
      "key-cert-sign",
      `${who} has keyUsage keyCertSign, which an X.509-SVID leaf must not have`,
    );
  }
  if (usage.cRLSign) {
    throw fail("crl-sign", `${who} has keyUsage cRLSign, which an X.509-SVID leaf must not have`);
  }
}
