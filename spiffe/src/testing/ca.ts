import type { X509Certificate } from "node:crypto";
import type { X509Bundle } from "../bundle.js";
import type { X509Svid } from "../x509svid.js";

/** Test-only certificate authority: makes SVIDs, including deliberately broken ones. */

export type KeyAlgorithm = "ec-p256" | "rsa-2048";

export interface IssueOptions {
  keyAlgorithm?: KeyAlgorithm;
  notBefore?: Date;
  notAfter?: Date;
  /** URI SANs; default [the SPIFFE ID]. Use to make none, two, or a non-spiffe one. */
  uris?: string[];
  dnsNames?: string[];
  /** basicConstraints cA (default false). */
  isCa?: boolean;
  /** keyUsage bits; default digitalSignature only (as SPIRE issues). */
  keyUsage?: { digitalSignature?: boolean; keyCertSign?: boolean; cRLSign?: boolean };
}

export interface IssuedSvid {
  /** Leaf first, then this CA's intermediates (not the root). */
  certificates: X509Certificate[];
  /** Concatenated DER of `certificates`, as the Workload API sends x509_svid. */
  chainDer: Buffer;
  /** PKCS#8 DER, as the Workload API sends x509_svid_key. */
  keyDer: Buffer;
  /** Parsed (only valid when the leaf has exactly one SPIFFE URI SAN). */
  svid(): X509Svid;
}

export class TestCa {
  /** A self-signed root for `trustDomain` (e.g. "broker.org"). */
  static async create(_trustDomain: string, _keyAlgorithm?: KeyAlgorithm): Promise<TestCa> {
    throw new Error("TODO");
  }

  /** This CA's own certificate. */
  get certificate(): X509Certificate {
    throw new Error("TODO");
  }

  /** Root certificate(s) as the trust domain's bundle. */
  bundle(): X509Bundle {
    throw new Error("TODO");
  }

  /** Concatenated DER of the bundle, as the Workload API sends it. */
  bundleDer(): Buffer {
    throw new Error("TODO");
  }

  /** An intermediate CA signed by this one; its SVIDs carry it in their chain. */
  async createIntermediate(): Promise<TestCa> {
    throw new Error("TODO");
  }

  /** Issues an SVID for `spiffeId` (a string, so invalid IDs can be tested too). */
  async issue(_spiffeId: string, _options?: IssueOptions): Promise<IssuedSvid> {
    throw new Error("TODO");
  }
}
