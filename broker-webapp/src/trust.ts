import type { X509Certificate } from "node:crypto";
import type { TrustDomain, X509Bundle, X509BundleSet } from "spiffe-node";

/** One CA certificate (authority) of a trust domain's bundle, as the trust panel shows it. */
export interface AuthorityView {
  /** The first 8 bytes of the SHA-256 fingerprint of its DER, as AB:CD:... */
  fingerprint: string;
  notAfter: Date;
}

/** One trust domain's bundle, as the webapp holds it. */
export interface BundleView {
  trustDomain: string;
  authorities: readonly AuthorityView[];
  /** When the webapp first received these authorities (a bundle arriving counts). */
  changedAt: Date;
}

/** Which authority issued the certificate a peer presented. */
export interface IssuerView {
  trustDomain: string;
  /** The bundle certificate that vouched for it; undefined only for an empty path. */
  authority: AuthorityView | undefined;
}

/** The JWT half of the trust panel (JWT road only). */
export interface JwtTrustView {
  /** Each trust domain's JWT authorities (key IDs), sorted by trust domain. */
  bundles: readonly { trustDomain: string; keyIds: readonly string[] }[];
  /** The key that signed the webapp's current JWT-SVID, and its trust domain. */
  signedBy: { trustDomain: string; keyId: string | undefined } | undefined;
}

/** What the trust panel and /healthz show. */
export interface TrustView {
  bundles: readonly BundleView[];
  /** The authority that issued the quotes service's certificate on the latest connection. */
  quotesIssuer: IssuerView | undefined;
  /** On the JWT road: the JWT authorities and which one signed our token. */
  jwt?: JwtTrustView;
}

const SHORT_FINGERPRINT_BYTES = 8;

/** How the trust panel shows one CA certificate. */
export function authorityView(certificate: X509Certificate): AuthorityView {
  return {
    fingerprint: certificate.fingerprint256.split(":").slice(0, SHORT_FINGERPRINT_BYTES).join(":"),
    notAfter: new Date(certificate.validTo),
  };
}

/**
 * Who issued a verified peer: the bundle certificate that ends its verified path (the
 * library hands that path to the client, so nothing is matched against the bundle again).
 */
export function issuerView(
  trustDomain: TrustDomain,
  verifiedChain: readonly X509Certificate[],
): IssuerView {
  const authority = verifiedChain.at(-1);
  return { trustDomain: trustDomain.name, authority: authority && authorityView(authority) };
}

function sameCertificates(a: readonly X509Certificate[], b: readonly X509Certificate[]): boolean {
  const theirs = new Set(b.map((certificate) => certificate.raw.toString("base64")));
  return a.length === theirs.size && a.every((c) => theirs.has(c.raw.toString("base64")));
}

/**
 * Remembers, per trust domain, the authorities last seen and when they changed. A bundle
 * withdrawn and given back unchanged (the agent re-sending it) is not a change.
 */
export class BundleHistory {
  readonly #seen = new Map<string, { bundle: X509Bundle; changedAt: Date }>();
  readonly #now: () => Date;
  #current: X509BundleSet | undefined;

  constructor(now: () => Date = () => new Date()) {
    this.#now = now;
  }

  /** Call with every bundle set the source serves (initial one and on each change). */
  update(bundles: X509BundleSet): void {
    this.#current = bundles;
    for (const bundle of bundles.bundles()) {
      const known = this.#seen.get(bundle.trustDomain.name);
      if (known && sameCertificates(known.bundle.certificates, bundle.certificates)) continue;
      this.#seen.set(bundle.trustDomain.name, { bundle, changedAt: this.#now() });
    }
  }

  /** The bundles held now, sorted by trust domain, with their authorities and change time. */
  view(): BundleView[] {
    return (this.#current?.bundles() ?? []).map((bundle) => {
      const name = bundle.trustDomain.name;
      return {
        trustDomain: name,
        authorities: bundle.certificates.map(authorityView),
        changedAt: this.#seen.get(name)?.changedAt ?? this.#now(),
      };
    });
  }
}

/** The trust view as JSON for /healthz (dates as ISO 8601). */
export function trustJson(view: TrustView): object {
  const authority = (a: AuthorityView) => ({
    sha256: a.fingerprint,
    notAfter: a.notAfter.toISOString(),
  });
  return {
    bundles: view.bundles.map((b) => ({
      trustDomain: b.trustDomain,
      changedAt: b.changedAt.toISOString(),
      authorities: b.authorities.map(authority),
    })),
    ...(view.jwt === undefined ? {} : { jwt: view.jwt }),
    quotesServiceIssuer:
      view.quotesIssuer === undefined
        ? null
        : {
            trustDomain: view.quotesIssuer.trustDomain,
            authority: view.quotesIssuer.authority ? authority(view.quotesIssuer.authority) : null,
          },
  };
}
