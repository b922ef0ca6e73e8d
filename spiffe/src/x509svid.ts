import type { KeyObject, X509Certificate } from "node:crypto";
import type { X509BundleSource } from "./bundle.js";
import { SpiffeError } from "./errors.js";
import type { SpiffeId } from "./spiffeid.js";

export class SvidError extends SpiffeError {}

/** An X.509-SVID: the workload's SPIFFE ID, its certificate chain and private key. */
export class X509Svid {
  readonly id: SpiffeId;
  /** Leaf first, then intermediates (if any). */
  readonly certificates: readonly X509Certificate[];
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
  static fromDer(_chainDer: Uint8Array, _keyDer: Uint8Array, _hint?: string): X509Svid {
    throw new Error("TODO");
  }

  /** From PEM files' contents (chain, leaf first; PKCS#8 or SEC1 key). */
  static fromPem(_chainPem: string, _keyPem: string): X509Svid {
    throw new Error("TODO");
  }

  get leaf(): X509Certificate {
    throw new Error("TODO");
  }

  /** The leaf's notAfter. */
  get expiresAt(): Date {
    throw new Error("TODO");
  }

  /** Chain as PEM, leaf first: Node's TLS `cert` option. */
  certificatesPem(): string {
    throw new Error("TODO");
  }

  /** Private key as PKCS#8 PEM: Node's TLS `key` option. */
  privateKeyPem(): string {
    throw new Error("TODO");
  }
}

/** Anything that can hand out the workload's current SVID (an X509Source, a fixed SVID...). */
export interface X509SvidSource {
  /** The current SVID, or undefined when there is none (yet, or any more). */
  getX509Svid(): X509Svid | undefined;
}

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
  | "malformed-certificate";

export class VerificationError extends SpiffeError {
  declare readonly code: VerificationRule;
}

/**
 * Authenticates a peer's X.509-SVID chain (leaf first, then any intermediates the peer
 * sent) against the bundle of the trust domain named in the leaf's SPIFFE ID, and only
 * that bundle. Returns the peer's SPIFFE ID or throws a VerificationError naming the rule.
 */
export function verifyX509Svid(
  _chain: readonly X509Certificate[],
  _bundles: X509BundleSource,
  _now: Date = new Date(),
): SpiffeId {
  throw new Error("TODO");
}
