import type { X509Certificate } from "node:crypto";
import { SpiffeError } from "./errors.js";
import type { TrustDomain } from "./spiffeid.js";

export class BundleError extends SpiffeError {}

/** The X.509 CA certificates (trust anchors) of one trust domain. */
export class X509Bundle {
  readonly trustDomain: TrustDomain;
  readonly certificates: readonly X509Certificate[];

  constructor(trustDomain: TrustDomain, certificates: readonly X509Certificate[]) {
    this.trustDomain = trustDomain;
    this.certificates = certificates;
  }

  /** From concatenated DER certificates, as the Workload API sends bundles. */
  static fromDer(_trustDomain: TrustDomain, _der: Uint8Array): X509Bundle {
    throw new Error("TODO");
  }

  /** From PEM text holding one or more CERTIFICATE blocks. */
  static fromPem(_trustDomain: TrustDomain, _pem: string): X509Bundle {
    throw new Error("TODO");
  }

  toPem(): string {
    throw new Error("TODO");
  }

  /** Same trust domain and the same certificates (by DER), order ignored. */
  equals(_other: X509Bundle): boolean {
    throw new Error("TODO");
  }
}

/** Anything that can hand out the bundle of a trust domain (a set, an X509Source...). */
export interface X509BundleSource {
  /** The bundle for `trustDomain`, or undefined when none is held. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined;
}

/** Bundles keyed by trust domain. Never merges bundles across trust domains. */
export class X509BundleSet implements X509BundleSource {
  constructor(_bundles: Iterable<X509Bundle> = []) {
    throw new Error("TODO");
  }

  getX509BundleForTrustDomain(_trustDomain: TrustDomain): X509Bundle | undefined {
    throw new Error("TODO");
  }

  /** Trust domains with a bundle, sorted by name. */
  trustDomains(): TrustDomain[] {
    throw new Error("TODO");
  }

  bundles(): X509Bundle[] {
    throw new Error("TODO");
  }

  get size(): number {
    throw new Error("TODO");
  }
}
