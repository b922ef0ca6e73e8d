import type { X509Certificate } from "node:crypto";
import { IncomingMessage, type RequestListener } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import {
  createServer as createTlsServer,
  type TLSSocket,
  type Server as TlsServer,
} from "node:tls";
import { Agent, type buildConnector } from "undici";
import type { Authorizer } from "./authorize.js";
import type { X509BundleSource } from "./bundle.js";
import type { SpiffeId } from "./spiffeid.js";
import { openMtlsSocket } from "./tls/client.js";
import { MtlsError } from "./tls/errors.js";
import { recordedPeerId } from "./tls/peer.js";
import { guardServer, mtlsServerOptions } from "./tls/server.js";
import { clientContexts } from "./tls/svid-context.js";
import type { X509SvidSource } from "./x509svid.js";

export { MtlsError, type MtlsErrorCode } from "./tls/errors.js";

/** What both sides of SPIFFE mTLS need: our SVID, the peers' bundles, and who may connect. */
export interface MtlsConfig {
  svidSource: X509SvidSource;
  bundleSource: X509BundleSource;
  authorizer: Authorizer;
}

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
  on(event: "bundlesChanged", listener: () => void): unknown;
  off(event: "bundlesChanged", listener: () => void): unknown;
}

export interface MtlsHttpsServerConfig extends MtlsServerConfig {
  /**
   * When it reports a change of trust, kept-alive connections that are idle are closed,
   * so each client connects again and is verified under the new bundles. (A request in
   * progress finishes first; its connection is closed once idle at the next change.)
   */
  trustChanges?: TrustChangeSource;
}

export interface MtlsClientConfig extends MtlsConfig {
  /**
   * Called with the server's ID each time a new connection authenticates it, and the
   * chain it presented (leaf first), e.g. to tell which authority issued it.
   */
  onPeerVerified?: (peerId: SpiffeId, chain: readonly X509Certificate[]) => void;
  /** Time allowed for TCP connect + handshake + authentication (default 10 000 ms). */
  connectTimeoutMs?: number;
}

/**
 * An HTTPS server that presents the current SVID, requires a client certificate and
 * accepts only peers that verify against their own trust domain's bundle and pass the
 * authorizer. Rejected peers are disconnected before any application data.
 * A new SVID is presented on the next connection; TLS sessions are never resumed across
 * a change of trust; with `trustChanges`, idle kept-alive connections close when it fires.
 */
export function createMtlsHttpsServer(
  config: MtlsHttpsServerConfig,
  requestListener?: RequestListener,
): HttpsServer {
  const server = createHttpsServer(mtlsServerOptions(), requestListener);
  guardServer(server, config);
  const { trustChanges } = config;
  if (trustChanges) {
    const closeIdle = () => server.closeIdleConnections();
    trustChanges.on("bundlesChanged", closeIdle);
    server.once("close", () => trustChanges.off("bundlesChanged", closeIdle));
  }
  return server;
}

/** The same for a raw TLS server; the listener only sees authenticated peers. */
export function createMtlsTlsServer(
  config: MtlsServerConfig,
  secureConnectionListener?: (socket: TLSSocket) => void,
): TlsServer {
  const server = createTlsServer(mtlsServerOptions(), secureConnectionListener);
  guardServer(server, config);
  return server;
}

/**
 * The authenticated peer's SPIFFE ID on a connection made or accepted by the helpers
 * here (a server's socket or request, or a client socket from connectMtls).
 */
export function peerIdOf(socketOrRequest: TLSSocket | IncomingMessage): SpiffeId | undefined {
  const socket =
    socketOrRequest instanceof IncomingMessage ? socketOrRequest.socket : socketOrRequest;
  return recordedPeerId(socket);
}

/**
 * A connector for undici (`new Agent({ connect })`) doing SPIFFE mTLS. Each new
 * connection presents the SVID current at that moment; the request fails with the
 * VerificationError, AuthorizationError or MtlsError that refused the server.
 */
export function mtlsConnector(config: MtlsClientConfig): buildConnector.connector {
  const contexts = clientContexts();
  return (options, callback) => {
    if (options.protocol !== "https:") {
      callback(
        new MtlsError(
          "unsupported-protocol",
          `SPIFFE mTLS needs an https: URL, got ${options.protocol}//${options.hostname}`,
        ),
        null,
      );
      return;
    }
    const socket = openMtlsSocket(
      config,
      contexts,
      {
        host: options.hostname,
        port: Number(options.port) || 443,
        servername: options.servername,
        localAddress: options.localAddress ?? undefined,
        socket: options.httpSocket,
        ALPNProtocols: ["http/1.1"],
        keepErrorListener: true,
      },
      callback,
    );
    // Like undici's own connector: TCP keep-alive and no Nagle delay on its sockets.
    socket?.setKeepAlive(true, 60_000).setNoDelay(true);
  };
}

/** An undici Agent whose connections are SPIFFE mTLS; keeps them alive and reuses them. */
export function createMtlsAgent(config: MtlsClientConfig, options?: Agent.Options): Agent {
  return new Agent({ ...options, connect: mtlsConnector(config) });
}

/** A single SPIFFE mTLS client connection; resolves once the server is authenticated. */
export function connectMtls(
  config: MtlsClientConfig,
  target: { host: string; port: number; servername?: string },
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    openMtlsSocket(config, clientContexts(), target, (error, socket) => {
      if (error) reject(error);
      else resolve(socket);
    });
  });
}
