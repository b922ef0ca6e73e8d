import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import { type ConnectionOptions, connect, type SecureContext, type TLSSocket } from "node:tls";
import { Agent, type buildConnector } from "undici";
import { asError } from "../internal/error-message.js";
import type { VerifiedX509Svid } from "../x509svid/verify.js";
import type { MtlsClientConfig } from "./config.js";
import { MtlsError } from "./errors.js";
import { authenticatePeer, recordPeerId } from "./peer.js";
import { clientContexts, currentSvid, type SvidTracker } from "./svid-context.js";

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Shaped like undici's connector callback: an error, or the authenticated socket. */
export type MtlsConnectCallback = (...outcome: [Error, null] | [null, TLSSocket]) => void;

/** Where openMtlsSocket connects, and how. */
export interface MtlsTarget {
  host: string;
  port: number;
  /** SNI; default the host when it is a DNS name (never sent for an IP address). */
  servername?: string;
  localAddress?: string;
  /** An already connected stream to run TLS over (e.g. a proxy tunnel). */
  socket?: Duplex;
  ALPNProtocols?: string[];
  /**
   * Keep swallowing socket errors after handing the socket over. undici needs this: it
   * attaches its own listener only after some asynchronous set-up (its own connector
   * does the same). Direct callers want errors to reach their listeners.
   */
  keepErrorListener?: boolean;
}

/**
 * The SNI to send. Only a DNS name may go in SNI (RFC 6066), and the server's identity is
 * its SPIFFE ID, not this name; it just lets a server pick a certificate.
 */
function serverNameFor(target: MtlsTarget, host: string): string | undefined {
  if (target.servername) return target.servername;
  return isIP(host) === 0 ? host : undefined;
}

/**
 * Opens one SPIFFE mTLS connection: presents the source's current SVID, then, once the
 * handshake is done, authenticates the server's chain and authorizes its ID before
 * handing the socket over. On failure the socket is destroyed (nothing it received is
 * ever read) and `done` gets the error. The hostname is not checked against the
 * certificate: the SPIFFE ID is the server's identity. No TLS session is ever offered
 * for resumption, so every connection verifies the server under the trust in force.
 */
export function openMtlsSocket(
  config: MtlsClientConfig,
  contexts: SvidTracker<SecureContext>,
  target: MtlsTarget,
  done: MtlsConnectCallback,
): TLSSocket | undefined {
  let secureContext: SecureContext;
  try {
    secureContext = contexts.update(currentSvid(config.svidSource));
  } catch (thrown) {
    done(asError(thrown), null);
    return undefined;
  }
  // URLs bracket IPv6 literals; the socket layer wants the bare address.
  const host = target.host.replace(/^\[(.*)\]$/, "$1");
  // localAddress is passed on to net.connect, though ConnectionOptions does not list it.
  const options: ConnectionOptions & { localAddress?: string } = {
    host,
    port: target.port,
    servername: serverNameFor(target, host),
    localAddress: target.localAddress,
    socket: target.socket,
    ALPNProtocols: target.ALPNProtocols,
    secureContext,
    // Verified by authenticatePeer against the bundle of the server's own trust domain.
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  };
  const socket = connect(options);

  const timeoutMs = config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const timer = setTimeout(() => {
    socket.destroy(
      new MtlsError(
        "connect-timeout",
        `no authenticated TLS connection to ${host}:${target.port} within ${timeoutMs} ms`,
      ),
    );
  }, timeoutMs);
  timer.unref();

  let pending = true;
  const finish: MtlsConnectCallback = (...outcome) => {
    if (!pending) return;
    pending = false;
    clearTimeout(timer);
    done(...outcome);
  };

  const onError = (error: Error): void => finish(error, null);
  socket.on("error", onError);
  socket.once("close", () => {
    finish(
      new MtlsError(
        "connection-closed",
        `connection to ${host}:${target.port} closed before the server was authenticated`,
      ),
      null,
    );
  });
  socket.once("secureConnect", () => {
    let verified: VerifiedX509Svid;
    try {
      verified = authenticatePeer(socket, config.bundleSource, config.authorizer);
    } catch (thrown) {
      socket.destroy();
      finish(asError(thrown), null);
      return;
    }
    recordPeerId(socket, verified.id);
    config.onPeerVerified?.(verified.id, verified.chain);
    if (!target.keepErrorListener) socket.off("error", onError);
    finish(null, socket);
  });
  return socket;
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
