import type { X509Certificate } from "node:crypto";
import { SpiffeError } from "../errors/spiffe-error.js";
import { certificatesToPem, parseDerCertificates, parsePemCertificates } from "../internal/der.js";
import { messageOf } from "../internal/error-message.js";
import type { TrustDomain } from "../spiffeid/spiffeid.js";

/** Codes: "malformed-bundle" (unreadable DER/PEM), "empty-bundle" (no certificates). */
export class BundleError extends SpiffeError {}

/** The X.509 CA certificates (trust anchors) of one trust domain. */
export class X509Bundle {
  /** The trust domain these authorities vouch for. */
  readonly trustDomain: TrustDomain;
  /** Its CA certificates, each one a trust anchor for IDs of that trust domain. */
  readonly certificates: readonly X509Certificate[];

  constructor(trustDomain: TrustDomain, certificates: readonly X509Certificate[]) {
    this.trustDomain = trustDomain;
    this.certificates = certificates;
  }

  /** From concatenated DER certificates, as the Workload API sends bundles. */
  static fromDer(trustDomain: TrustDomain, der: Uint8Array): X509Bundle {
    let certificates: X509Certificate[];
    try {
      certificates = parseDerCertificates(der);
    } catch (error) {
      throw new BundleError(
        "malformed-bundle",
        `X.509 bundle for ${trustDomain.name} is not concatenated DER certificates: ${messageOf(error)}`,
        { cause: error },
      );
    }
    return X509Bundle.checked(trustDomain, certificates, "DER");
  }

  /** From PEM text holding one or more CERTIFICATE blocks. */
  static fromPem(trustDomain: TrustDomain, pem: string): X509Bundle {
    let certificates: X509Certificate[];
    try {
      certificates = parsePemCertificates(pem);
    } catch (error) {
      throw new BundleError(
        "malformed-bundle",
        `X.509 bundle for ${trustDomain.name} is not valid PEM: ${messageOf(error)}`,
        { cause: error },
      );
    }
    return X509Bundle.checked(trustDomain, certificates, "PEM");
  }

  private static checked(
    trustDomain: TrustDomain,
    certificates: X509Certificate[],
    form: string,
  ): X509Bundle {
    // An empty bundle would silently distrust the whole trust domain: refuse it loudly.
    if (certificates.length === 0) {
      throw new BundleError(
        "empty-bundle",
        `X.509 bundle for ${trustDomain.name} holds no certificates (empty ${form})`,
      );
    }
    return new X509Bundle(trustDomain, certificates);
  }

  /** The certificates as concatenated PEM. */
  toPem(): string {
    return certificatesToPem(this.certificates);
  }

  /** Concatenated DER, as the Workload API sends bundles. */
  toDer(): Buffer {
    return Buffer.concat(this.certificates.map((certificate) => certificate.raw));
  }

  /** Same trust domain and the same certificates (by DER), order ignored. */
  equals(other: X509Bundle): boolean {
    if (!this.trustDomain.equals(other.trustDomain)) return false;
    const mine = derSet(this.certificates);
    const theirs = derSet(other.certificates);
    return mine.size === theirs.size && [...mine].every((der) => theirs.has(der));
  }
}

function derSet(certificates: readonly X509Certificate[]): Set<string> {
  return new Set(certificates.map((certificate) => certificate.raw.toString("base64")));
}

/** Anything that can hand out the bundle of a trust domain (a set, an X509Source...). */
export interface X509BundleSource {
  /** The bundle for `trustDomain`, or undefined when none is held. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined;
}

/** Bundles keyed by trust domain. Never merges bundles across trust domains. */
export class X509BundleSet implements X509BundleSource {
  private readonly byName = new Map<string, X509Bundle>();

  /** A later bundle for the same trust domain replaces an earlier one (never merged). */
  constructor(bundles: Iterable<X509Bundle> = []) {
    for (const bundle of bundles) this.byName.set(bundle.trustDomain.name, bundle);
  }

  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined {
    return this.byName.get(trustDomain.name);
  }

  /** Trust domains with a bundle, sorted by name. */
  trustDomains(): TrustDomain[] {
    return this.bundles().map((bundle) => bundle.trustDomain);
  }

  /** The bundles, sorted by trust domain name. */
  bundles(): X509Bundle[] {
    return [...this.byName.values()].sort((a, b) =>
      a.trustDomain.name < b.trustDomain.name
        ? -1
        : a.trustDomain.name > b.trustDomain.name
          ? 1
          : 0,
    );
  }

  /** How many trust domains the set holds. */
  get size(): number {
    return this.byName.size;
  }

  /** The same trust domains, each with an equal bundle (see X509Bundle.equals). */
  equals(other: X509BundleSet): boolean {
    if (this.size !== other.size) return false;
    for (const bundle of this.byName.values()) {
      const theirs = other.getX509BundleForTrustDomain(bundle.trustDomain);
      if (theirs === undefined || !bundle.equals(theirs)) return false;
    }
    return true;
  }
}
