import type { Socket } from "node:net";
import type { TLSSocket, TlsOptions, Server as TlsServer } from "node:tls";
import type { SpiffeId } from "../spiffeid.js";
import type { MtlsServerConfig } from "../tlsconfig.js";
import { asError } from "./errors.js";
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
export function mtlsServerOptions(): TlsOptions {
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
export function guardServer(server: TlsServer, config: MtlsServerConfig): void {
  const installed = new SvidTracker((svid) => {
    server.setSecureContext({ ...mtlsServerOptions(), ...svidContextOptions(svid) });
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

  gate(server, "secureConnection", (socket: TLSSocket) => {
    let peerId: SpiffeId;
    try {
      peerId = authenticatePeer(socket, config.bundleSource, config.authorizer);
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
