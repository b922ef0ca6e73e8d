import type { PeerCertificate, TLSSocket } from "node:tls";
import type { SpiffeId } from "../spiffeid/spiffeid.js";

/**
 * The peers authenticated by mtlsServerCredentials, by the DER of their leaf certificate
 * (base64), counted per open connection. grpc-js gives a handler the peer's certificate
 * but not its socket, so this is how a call finds the ID verified for its connection.
 */
const verifiedPeers = new Map<string, { id: SpiffeId; connections: number }>();

/** Remembers the ID verified for `socket`'s peer until the connection closes. */
export function recordGrpcPeer(socket: TLSSocket, peerId: SpiffeId): void {
  const raw = socket.getPeerCertificate().raw;
  const key = raw.toString("base64");
  const entry = verifiedPeers.get(key) ?? { id: peerId, connections: 0 };
  entry.connections += 1;
  verifiedPeers.set(key, entry);
  socket.once("close", () => {
    entry.connections -= 1;
    if (entry.connections === 0) verifiedPeers.delete(key);
  });
}

/** What peerIdFromCall needs of a grpc-js server call (every kind of call has it). */
export interface CallWithAuthContext {
  /** grpc-js's view of the call's connection. */
  getAuthContext(): {
    /** The client's certificate, present when its connection was authenticated. */
    sslPeerCertificate?: PeerCertificate;
  };
}

/**
 * The SPIFFE ID of the client of a call, on a server bound with mtlsServerCredentials,
 * like go-spiffe's `grpccredentials.PeerIDFromContext`. Undefined when the call's
 * connection was not authenticated by this library (another kind of credentials).
 */
export function peerIdFromCall(call: CallWithAuthContext): SpiffeId | undefined {
  const raw = call.getAuthContext().sslPeerCertificate?.raw;
  return raw ? verifiedPeers.get(raw.toString("base64"))?.id : undefined;
}
