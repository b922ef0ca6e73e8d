import type { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { X509BundleSource } from "../bundle/x509bundle.js";
import type { SpiffeId } from "../spiffeid/spiffeid.js";
import type { X509SvidSource } from "../x509svid/source.js";
import type { Authorizer } from "./authorize.js";

/** What both sides of SPIFFE mTLS need: our SVID, the peers' bundles, and who may connect. */
export interface MtlsConfig {
  /** Our own SVID, read afresh for every connection (an X509Source follows rotations). */
  svidSource: X509SvidSource;
  /** The bundles peers are verified against, each by the bundle of its own trust domain. */
  bundleSource: X509BundleSource;
  /** Who may connect, decided after the peer's chain verified. */
  authorizer: Authorizer;
}

/** A SPIFFE mTLS server's settings: the common ones and what to report per connection. */
export interface MtlsServerConfig extends MtlsConfig {
  /**
   * Called for each connection refused, after it has been dropped: the peer failed
   * verification (VerificationError, or MtlsError "no-peer-certificate") or authorization
   * (AuthorizationError), or we had no SVID to present (MtlsError "no-svid").
   */
  onPeerRejected?: (error: Error, remoteAddress: string | undefined) => void;
  /** Called for each peer accepted. */
  onPeerAccepted?: (peerId: SpiffeId, socket: TLSSocket) => void;
}

/**
 * Says when trust changed, so that connections authenticated under the old bundles can
 * be dropped. An X509Source is one: it emits "bundlesChanged".
 */
export interface TrustChangeSource {
  /** Starts calling `listener` on each change of trust. */
  on(event: "bundlesChanged", listener: () => void): unknown;
  /** Stops calling `listener`. */
  off(event: "bundlesChanged", listener: () => void): unknown;
}

/** An HTTPS server's settings: a server's, and what tells it that trust changed. */
export interface MtlsHttpsServerConfig extends MtlsServerConfig {
  /**
   * When it reports a change of trust, kept-alive connections that are idle are closed,
   * so each client connects again and is verified under the new bundles. (A request in
   * progress finishes first; its connection is closed once idle at the next change.)
   */
  trustChanges?: TrustChangeSource;
}

/** A SPIFFE mTLS client's settings: the common ones, a verified-peer hook and a time limit. */
export interface MtlsClientConfig extends MtlsConfig {
  /**
   * Called each time a new connection authenticates the server, with its ID and the
   * verified path (leaf first, ending with the bundle certificate that vouched for it),
   * e.g. to tell which authority of its trust domain issued it.
   */
  onPeerVerified?: (peerId: SpiffeId, chain: readonly X509Certificate[]) => void;
  /** Time allowed for TCP connect + handshake + authentication (default 10 000 ms). */
  connectTimeoutMs?: number;
}
