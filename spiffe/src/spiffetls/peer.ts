import { X509Certificate } from "node:crypto";
import { IncomingMessage } from "node:http";
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";
import type { X509BundleSource } from "../bundle/x509bundle.js";
import type { SpiffeId } from "../spiffeid/spiffeid.js";
import { type VerifiedX509Svid, verifyX509Svid } from "../x509svid/verify.js";
import type { Authorizer } from "./authorize.js";
import { MtlsError } from "./errors.js";

/** Longer chains than this are not SVIDs; stops the walk on pathological input. */
const MAX_CHAIN_LENGTH = 16;

/**
 * The certificates the peer sent, leaf first. Node has no API returning the raw sent
 * chain; getPeerCertificate(true) links each certificate to its issuer among the ones the
 * peer sent (and the context's CA store, which our contexts keep empty), ending on a
 * self-signed certificate that points at itself. On a resumed session only the leaf is
 * known.
 */
function peerChainOf(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<DetailedPeerCertificate>();
  let current: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (current?.raw && !seen.has(current) && chain.length < MAX_CHAIN_LENGTH) {
    seen.add(current);
    chain.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return chain;
}

/**
 * Authenticates the peer of an established TLS connection: its chain must be an X.509-SVID
 * that verifies against its own trust domain's bundle, and the authorizer must accept its
 * ID and verified path. Returns both, or throws (VerificationError, AuthorizationError or
 * MtlsError).
 */
export function authenticatePeer(
  socket: TLSSocket,
  bundleSource: X509BundleSource,
  authorizer: Authorizer,
): VerifiedX509Svid {
  const chain = peerChainOf(socket);
  if (chain.length === 0) {
    throw new MtlsError(
      "no-peer-certificate",
      "the peer presented no certificate; SPIFFE mTLS requires an X.509-SVID on both sides",
    );
  }
  const verified = verifyX509Svid(chain, bundleSource);
  authorizer(verified.id, verified.chain);
  return verified;
}

/** Authenticated peer IDs, by connection; a WeakMap so closed sockets are not kept. */
const peerIds = new WeakMap<object, SpiffeId>();

/** Remembers the peer a socket authenticated, for peerIdOf. */
export function recordPeerId(socket: TLSSocket, peerId: SpiffeId): void {
  peerIds.set(socket, peerId);
}

/**
 * The authenticated peer's SPIFFE ID on a connection made or accepted by the helpers
 * here (a server's socket or request, or a client socket from connectMtls).
 */
export function peerIdOf(socketOrRequest: TLSSocket | IncomingMessage): SpiffeId | undefined {
  const socket =
    socketOrRequest instanceof IncomingMessage ? socketOrRequest.socket : socketOrRequest;
  return peerIds.get(socket);
}
