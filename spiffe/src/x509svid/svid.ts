import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  type X509Certificate,
} from "node:crypto";
import { SpiffeError } from "../errors/spiffe-error.js";
import { type CertificateDetails, certificateDetails } from "../internal/certinfo.js";
import { certificatesToPem, parseDerCertificates, parsePemCertificates } from "../internal/der.js";
import { messageOf } from "../internal/error-message.js";
import type { SpiffeId } from "../spiffeid/spiffeid.js";
import { checkLeafUsage, type LeafRule, leafSpiffeId, type RuleFailure } from "./rules.js";

/**
 * Why an X.509-SVID cannot be used as the workload's own. The leaf rules carry the same
 * codes as peer verification (VerificationError): "no-uri-san", "multiple-uri-sans",
 * "invalid-spiffe-id", "missing-path", "leaf-is-ca", "no-digital-signature",
 * "key-cert-sign", "crl-sign".
 */
export type SvidErrorCode =
  | LeafRule
  | "malformed-chain"
  | "empty-chain"
  | "malformed-key"
  | "key-mismatch"
  /** A certificate after the leaf is not a CA (basicConstraints cA false). */
  | "signing-cert-not-ca"
  /** A certificate after the leaf lacks keyUsage keyCertSign. */
  | "signing-cert-no-key-cert-sign";

/** The workload's own X.509-SVID breaks a rule (see SvidErrorCode), or cannot be read. */
export class SvidError extends SpiffeError {
  declare readonly code: SvidErrorCode;

  constructor(code: SvidErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

const ruleBroken: RuleFailure = (rule, message, options) => new SvidError(rule, message, options);

function readDetails(certificate: X509Certificate, what: string): CertificateDetails {
  try {
    return certificateDetails(certificate);
  } catch (error) {
    throw new SvidError("malformed-chain", `${what} is malformed: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

/** X509-SVID 4.3: every certificate after the leaf signs, so it is a CA with keyCertSign. */
function checkSigningCertificate(certificate: X509Certificate, what: string): void {
  const details = readDetails(certificate, what);
  if (!details.isCa) {
    throw new SvidError(
      "signing-cert-not-ca",
      `${what} is not a CA (basicConstraints cA false), but every certificate after the leaf signs one below it`,
    );
  }
  if (!details.keyUsage?.keyCertSign) {
    throw new SvidError(
      "signing-cert-no-key-cert-sign",
      `${what} lacks keyUsage keyCertSign, which a signing certificate needs`,
    );
  }
}

/** The chain as one byte string; DER is self-delimiting, so equal bytes mean equal chains. */
function chainDer(certificates: readonly X509Certificate[]): Buffer {
  return Buffer.concat(certificates.map((certificate) => certificate.raw));
}

function spkiDer(key: KeyObject): Buffer {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return publicKey.export({ type: "spki", format: "der" });
}

/** An X.509-SVID: the workload's SPIFFE ID, its certificate chain and private key. */
export class X509Svid {
  /** The workload's SPIFFE ID, from the leaf's URI SAN. */
  readonly id: SpiffeId;
  /** Leaf first, then intermediates (if any). */
  readonly certificates: readonly X509Certificate[];
  /** The private key of the leaf certificate. */
  readonly privateKey: KeyObject;
  /** Workload API hint ("" when none). */
  readonly hint: string;

  constructor(
    id: SpiffeId,
    certificates: readonly X509Certificate[],
    privateKey: KeyObject,
    hint = "",
  ) {
    this.id = id;
    this.certificates = certificates;
    this.privateKey = privateKey;
    this.hint = hint;
  }

  /**
   * From the Workload API's raw fields: concatenated DER chain (leaf first) and PKCS#8
   * DER key (the only form the Workload API sends). Applies the X.509-SVID rules as
   * go-spiffe's x509svid.Parse does: the leaf carries exactly one URI SAN that is a
   * workload SPIFFE ID, is not a CA, has keyUsage digitalSignature and neither keyCertSign
   * nor cRLSign; every later certificate is a CA with keyCertSign; the key matches the
   * leaf. It does not check validity or the chain's signatures: X509Source does that
   * against the bundle that came with the SVID.
   */
  static fromDer(chainDer: Uint8Array, keyDer: Uint8Array, hint = ""): X509Svid {
    let certificates: X509Certificate[];
    try {
      certificates = parseDerCertificates(chainDer);
    } catch (error) {
      throw new SvidError(
        "malformed-chain",
        `X.509-SVID chain is not concatenated DER certificates: ${messageOf(error)}`,
        { cause: error },
      );
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: Buffer.from(keyDer), format: "der", type: "pkcs8" });
    } catch (error) {
      throw new SvidError(
        "malformed-key",
        `X.509-SVID private key is not unencrypted PKCS#8 DER: ${messageOf(error)}`,
        { cause: error },
      );
    }
    return X509Svid.assemble(certificates, privateKey, hint);
  }

  /**
   * From PEM files' contents: the chain, leaf first, and an unencrypted key as PKCS#8
   * ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). go-spiffe
   * wants PKCS#8; the other two hold the same key and are what many tools write.
   */
  static fromPem(chainPem: string, keyPem: string): X509Svid {
    let certificates: X509Certificate[];
    try {
      certificates = parsePemCertificates(chainPem);
    } catch (error) {
      throw new SvidError(
        "malformed-chain",
        `X.509-SVID chain PEM is unreadable: ${messageOf(error)}`,
        { cause: error },
      );
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(keyPem);
    } catch (error) {
      throw new SvidError(
        "malformed-key",
        `X.509-SVID private key PEM is unreadable (expected an unencrypted PKCS#8, SEC1 or PKCS#1 key): ${messageOf(error)}`,
        { cause: error },
      );
    }
    return X509Svid.assemble(certificates, privateKey, "");
  }

  private static assemble(
    certificates: X509Certificate[],
    privateKey: KeyObject,
    hint: string,
  ): X509Svid {
    const leaf = certificates[0];
    if (!leaf) throw new SvidError("empty-chain", "X.509-SVID chain holds no certificates");
    const details = readDetails(leaf, "X.509-SVID leaf certificate");
    const id = leafSpiffeId(details, "the X.509-SVID leaf certificate", ruleBroken);
    checkLeafUsage(details, `the X.509-SVID leaf certificate for ${id}`, ruleBroken);
    certificates.slice(1).forEach((certificate, index) => {
      checkSigningCertificate(certificate, `intermediate certificate ${index + 1} of ${id}`);
    });
    let leafKey: KeyObject;
    try {
      leafKey = leaf.publicKey;
    } catch (error) {
      // OpenSSL parses the certificate but not every key in it (found by the fuzz tests).
      throw new SvidError(
        "malformed-chain",
        `the X.509-SVID leaf certificate for ${id} holds a public key that cannot be read: ${messageOf(error)}`,
        { cause: error },
      );
    }
    if (!spkiDer(privateKey).equals(spkiDer(leafKey))) {
      throw new SvidError(
        "key-mismatch",
        `X.509-SVID private key for ${id} does not match the public key of its leaf certificate`,
      );
    }
    return new X509Svid(id, certificates, privateKey, hint);
  }

  /** The leaf certificate, the one carrying the ID. */
  get leaf(): X509Certificate {
    const leaf = this.certificates[0];
    if (!leaf) throw new SvidError("empty-chain", `X.509-SVID for ${this.id} has no certificates`);
    return leaf;
  }

  /** The leaf's notAfter. */
  get expiresAt(): Date {
    return certificateDetails(this.leaf).notAfter;
  }

  /** Chain as PEM, leaf first: Node's TLS `cert` option. */
  certificatesPem(): string {
    return certificatesToPem(this.certificates);
  }

  /** Private key as PKCS#8 PEM: Node's TLS `key` option. */
  privateKeyPem(): string {
    return this.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  }

  /**
   * Whether `other` is this same SVID: the same certificates (by DER, in order) and the
   * same private key. Agents re-send unchanged SVIDs, and this tells those from a rotation.
   */
  equals(other: X509Svid | undefined): boolean {
    return (
      other !== undefined &&
      chainDer(this.certificates).equals(chainDer(other.certificates)) &&
      this.privateKey.equals(other.privateKey)
    );
  }
}
