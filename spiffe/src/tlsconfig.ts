import type { IncomingMessage, RequestListener } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { TLSSocket, Server as TlsServer } from "node:tls";
import type { Agent, buildConnector } from "undici";
import type { Authorizer } from "./authorize.js";
import type { X509BundleSource } from "./bundle.js";
import type { SpiffeId } from "./spiffeid.js";
import type { X509SvidSource } from "./x509svid.js";

/** What both sides of SPIFFE mTLS need: our SVID, the peers' bundles, and who may connect. */
export interface MtlsConfig {
  svidSource: X509SvidSource;
  bundleSource: X509BundleSource;
  authorizer: Authorizer;
}

export interface MtlsServerConfig extends MtlsConfig {
  /** Called for each peer refused (verification or authorization), before it is dropped. */
  onPeerRejected?: (error: Error, remoteAddress: string | undefined) => void;
  /** Called for each peer accepted. */
  onPeerAccepted?: (peerId: SpiffeId, socket: TLSSocket) => void;
}

export interface MtlsClientConfig extends MtlsConfig {
  /** Called with the server's ID each time a new connection authenticates it. */
  onPeerVerified?: (peerId: SpiffeId) => void;
}

/**
 * An HTTPS server that presents the current SVID, requires a client certificate and
 * accepts only peers that verify against their own trust domain's bundle and pass the
 * authorizer. Rejected peers are disconnected before any application data.
 * A new SVID is presented on the next connection; TLS sessions are never resumed across
 * a change of trust.
 */
export function createMtlsHttpsServer(
  _config: MtlsServerConfig,
  _requestListener?: RequestListener,
): HttpsServer {
  throw new Error("TODO");
}

/** The same for a raw TLS server. */
export function createMtlsTlsServer(
  _config: MtlsServerConfig,
  _secureConnectionListener?: (socket: TLSSocket) => void,
): TlsServer {
  throw new Error("TODO");
}

/** The authenticated peer's SPIFFE ID on a connection accepted by the helpers above. */
export function peerIdOf(_socketOrRequest: TLSSocket | IncomingMessage): SpiffeId | undefined {
  throw new Error("TODO");
}

/** A connector for undici (`new Agent({ connect })`) doing SPIFFE mTLS. */
export function mtlsConnector(_config: MtlsClientConfig): buildConnector.connector {
  throw new Error("TODO");
}

/** An undici Agent whose connections are SPIFFE mTLS; keeps them alive and reuses them. */
export function createMtlsAgent(_config: MtlsClientConfig, _options?: Agent.Options): Agent {
  throw new Error("TODO");
}

/** A single SPIFFE mTLS client connection; resolves once the server is authenticated. */
export function connectMtls(
  _config: MtlsClientConfig,
  _target: { host: string; port: number; servername?: string },
): Promise<TLSSocket> {
  throw new Error("TODO");
}
