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
import { parseSpiffeId, type SpiffeId } from "../spiffeid/spiffeid.js";

/**
 * Codes: "malformed-chain", "empty-chain", "malformed-key", "no-uri-san",
 * "multiple-uri-sans", "invalid-spiffe-id", "missing-path", "key-mismatch".
 */
export class SvidError extends SpiffeError {}

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
   * DER key. Checks that the leaf carries exactly one URI SAN that is a workload SPIFFE ID
   * and that the key matches the leaf.
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

  /** From PEM files' contents (chain, leaf first; PKCS#8 or SEC1 key). */
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
        `X.509-SVID private key PEM is unreadable (expected an unencrypted PKCS#8 or SEC1 key): ${messageOf(error)}`,
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
    let details: CertificateDetails;
    try {
      details = certificateDetails(leaf);
    } catch (error) {
      throw new SvidError(
        "malformed-chain",
        `X.509-SVID leaf certificate is malformed: ${messageOf(error)}`,
        { cause: error },
      );
    }
    const [uri, ...others] = details.uris;
    if (uri === undefined) {
      throw new SvidError("no-uri-san", "X.509-SVID leaf certificate has no URI SAN (SPIFFE ID)");
    }
    if (others.length > 0) {
      throw new SvidError(
        "multiple-uri-sans",
        `X.509-SVID leaf certificate has ${details.uris.length} URI SANs (${details.uris.join(", ")}); exactly one is allowed`,
      );
    }
    let id: SpiffeId;
    try {
      id = parseSpiffeId(uri);
    } catch (error) {
      throw new SvidError(
        "invalid-spiffe-id",
        `X.509-SVID leaf URI SAN is not a valid SPIFFE ID: ${messageOf(error)}`,
        { cause: error },
      );
    }
    if (id.path === "") {
      throw new SvidError(
        "missing-path",
        `X.509-SVID leaf carries ${id}, a trust domain ID; a workload's SPIFFE ID needs a path`,
      );
    }
    if (!spkiDer(privateKey).equals(spkiDer(leaf.publicKey))) {
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
