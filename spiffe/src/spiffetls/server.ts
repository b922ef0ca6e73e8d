import type { ServerOptions as HttpServerOptions, RequestListener } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import {
  createServer as createTlsServer,
  type TLSSocket,
  type TlsOptions,
  type Server as TlsServer,
} from "node:tls";
import { asError } from "../internal/error-message.js";
import type { SpiffeId } from "../spiffeid/spiffeid.js";
import type { MtlsHttpsServerConfig, MtlsServerConfig, TlsServerConfig } from "./config.js";
import { authenticatePeer, recordPeerId } from "./peer.js";
import {
  currentSvid,
  noSvidContextOptions,
  SvidTracker,
  svidContextOptions,
} from "./svid-context.js";

/**
 * Server options for SPIFFE mTLS. Node can only verify a client against one merged CA
 * list, which SPIFFE forbids (each chain must verify against its own trust domain's
 * bundle), so the handshake accepts any client certificate and `guardServer` verifies it
 * before anything else sees the connection. The certificate comes from the SVID source
 * at each connection.
 */
function mtlsServerOptions(): TlsOptions {
  return { ...noSvidContextOptions(), requestCert: true, rejectUnauthorized: false };
}

/**
 * Puts `admit` in front of the listeners already registered for `event` (Node's own:
 * the TLS layer on "connection", the HTTP layer on "secureConnection"): they only run for
 * sockets `admit` lets through. Listeners added later see every socket.
 */
function gate<S extends Socket>(
  server: TlsServer,
  event: "connection" | "secureConnection",
  admit: (socket: S) => boolean,
): void {
  const downstream = server.listeners(event);
  server.removeAllListeners(event);
  server.on(event, function (this: TlsServer, socket: S) {
    if (!admit(socket)) return;
    for (const listener of downstream) Reflect.apply(listener, this, [socket]);
  });
}

/** Drops a connection at once; the peer gets no data from us. */
function drop(socket: Socket): void {
  // A reset racing the destroy must not surface as an unhandled 'error'.
  socket.on("error", () => {});
  socket.destroy();
}

/**
 * Makes `server` (a tls.Server or https.Server created with mtlsServerOptions(), before it
 * listens) serve SPIFFE mTLS:
 * - on each TCP connection, before the TLS layer sees it: reads the source's current SVID
 *   and, when it differs from the one installed, installs it with setSecureContext (the
 *   TLS layer builds this very connection's TLSSocket from the context installed then);
 *   with no SVID the connection is dropped before any handshake;
 * - on each completed handshake, before the HTTP layer or the caller's listener sees the
 *   socket: authenticates the client's chain and authorizes its ID, or drops it.
 */
function guardServer(server: TlsServer, config: MtlsServerConfig): void {
  presentSvid(server, config, mtlsServerOptions());

  gate(server, "secureConnection", (socket: TLSSocket) => {
    let peerId: SpiffeId;
    try {
      peerId = authenticatePeer(socket, config.bundleSource, config.authorizer).id;
    } catch (thrown) {
      const remoteAddress = socket.remoteAddress;
      drop(socket);
      config.onPeerRejected?.(asError(thrown), remoteAddress);
      return false;
    }
    recordPeerId(socket, peerId);
    config.onPeerAccepted?.(peerId, socket);
    return true;
  });
}

/**
 * On each TCP connection, before the TLS layer sees it: installs the source's current
 * SVID when it changed (see guardServer), or drops the connection when there is none.
 */
function presentSvid(server: TlsServer, config: TlsServerConfig, options: TlsOptions): void {
  const installed = new SvidTracker((svid) => {
    server.setSecureContext({ ...options, ...svidContextOptions(svid) });
  });
  gate(server, "connection", (socket: Socket) => {
    try {
      installed.update(currentSvid(config.svidSource));
      return true;
    } catch (thrown) {
      const remoteAddress = socket.remoteAddress;
      drop(socket);
      config.onPeerRejected?.(asError(thrown), remoteAddress);
      return false;
    }
  });
}

/**
 * An HTTPS server that presents the current SVID, requires a client certificate and
 * accepts only peers that verify against their own trust domain's bundle and pass the
 * authorizer. Rejected peers are disconnected before any application data.
 * A new SVID is presented on the next connection; TLS sessions are never resumed across
 * a change of trust; with `trustChanges`, idle kept-alive connections close when it fires.
 * `httpOptions` are the HTTP layer's (timeouts, header limits, the request and response
 * classes); the TLS settings are always the library's.
 */
export function createMtlsHttpsServer(
  config: MtlsHttpsServerConfig,
  requestListener?: RequestListener,
  httpOptions: HttpServerOptions = {},
): HttpsServer {
  const server = createHttpsServer({ ...httpOptions, ...mtlsServerOptions() }, requestListener);
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
 * An HTTPS server that presents the current X.509-SVID, rotated as for
 * createMtlsHttpsServer, but asks for no client certificate: clients authenticate the
 * server by SPIFFE and themselves otherwise, e.g. with a JWT-SVID in `Authorization`,
 * which the request handler must check (parseAndValidateJwtSvid).
 */
export function createTlsHttpsServer(
  config: TlsServerConfig,
  requestListener?: RequestListener,
  httpOptions: HttpServerOptions = {},
): HttpsServer {
  const options: TlsOptions = { ...noSvidContextOptions(), requestCert: false };
  const server = createHttpsServer({ ...httpOptions, ...options }, requestListener);
  presentSvid(server, config, options);
  return server;
}
