import type { KeyObject } from "node:crypto";
import type { SignatureAlgorithm } from "./certinfo.js";

/**
 * Which certificate signatures the library accepts: those SPIRE issues and Go's
 * crypto/x509 (so go-spiffe) verifies. Everything else is refused, the weak ones (MD2,
 * MD4, MD5, SHA-1: collisions are practical or close) with their own verdict.
 */
const ACCEPTED = new Set([
  "1.2.840.10045.4.3.2", // ecdsa-with-SHA256
  "1.2.840.10045.4.3.3", // ecdsa-with-SHA384
  "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
  "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
  "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
  "1.3.101.112", // Ed25519
]);

const WEAK: Record<string, string> = {
  "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
  "1.2.840.113549.1.1.3": "md4WithRSAEncryption",
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.3.14.3.2.29": "sha1WithRSASignature (OIW)",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
  "1.2.840.10040.4.3": "dsa-with-sha1",
};

const OID_RSASSA_PSS = "1.2.840.113549.1.1.10";

/** Hashes RSASSA-PSS may use (SHA-256, SHA-384, SHA-512); SHA-1, its default, is weak. */
const PSS_HASHES = new Set([
  "2.16.840.1.101.3.4.2.1",
  "2.16.840.1.101.3.4.2.2",
  "2.16.840.1.101.3.4.2.3",
]);
const OID_SHA1 = "1.3.14.3.2.26";

/** The ECDSA curves accepted for a signing key (Node's names for P-256 and P-384). */
const ACCEPTED_CURVES = new Set(["prime256v1", "secp384r1"]);

/** An accepted algorithm, or a refused one with its name for the message. */
export type SignatureVerdict =
  | { verdict: "accepted" }
  | { verdict: "weak" | "unsupported"; name: string };

/** Judges a certificate's signature algorithm by its OID (and PSS parameters). */
export function judgeSignatureAlgorithm(algorithm: SignatureAlgorithm): SignatureVerdict {
  const { oid, pss } = algorithm;
  if (ACCEPTED.has(oid)) return { verdict: "accepted" };
  const weak = WEAK[oid];
  if (weak !== undefined) return { verdict: "weak", name: weak };
  if (oid !== OID_RSASSA_PSS || pss === undefined) {
    return { verdict: "unsupported", name: `signature algorithm ${oid}` };
  }
  if (pss.hash === OID_SHA1) return { verdict: "weak", name: "RSASSA-PSS with SHA-1" };
  // Go accepts only MGF1 with the signature's own hash; so do we.
  if (!PSS_HASHES.has(pss.hash) || pss.mgfHash !== pss.hash) {
    return {
      verdict: "unsupported",
      name: `RSASSA-PSS with hash ${pss.hash} and MGF1 hash ${pss.mgfHash ?? "(not MGF1)"}`,
    };
  }
  return { verdict: "accepted" };
}

/**
 * Why `key` may not sign certificates, or undefined: ECDSA keys must be on P-256 or
 * P-384; RSA and Ed25519 keys are fine. Other kinds (DSA, Ed448) are refused.
 */
export function signingKeyProblem(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  if (type === "rsa" || type === "rsa-pss" || type === "ed25519") return undefined;
  if (type === "ec") {
    // Node names the curve of every EC key it loads.
    const curve = String(key.asymmetricKeyDetails?.namedCurve);
    return ACCEPTED_CURVES.has(curve)
      ? undefined
      : `an ECDSA key on curve ${curve}; only P-256 and P-384 are accepted`;
  }
  return `a ${String(type)} key; only ECDSA (P-256, P-384), RSA and Ed25519 keys are accepted`;
}
