import type { TLSSocket } from "node:tls";
import type { X509BundleSource } from "../bundle/x509bundle.js";
import { asError } from "../internal/error-message.js";
import type { Authorizer } from "../spiffetls/authorize.js";
import type { TrustChangeSource } from "../spiffetls/config.js";
import { authenticatePeer } from "../spiffetls/peer.js";

/** Drops a connection at once; the peer gets no more data from us. */
export function drop(socket: TLSSocket): void {
  // A reset racing the destroy must not surface as an unhandled 'error'.
  socket.on("error", () => {});
  socket.destroy();
}

/**
 * The open connections whose peer was verified, verified again each time `trustChanges`
 * reports new bundles: gRPC keeps a connection open for as long as the channel lives, so
 * without this a peer would stay trusted after its trust domain's bundle was removed or
 * its CA replaced. The listener is registered only while there are connections.
 */
export class VerifiedConnections {
  private readonly sockets = new Set<TLSSocket>();
  private readonly bundleSource: X509BundleSource;
  private readonly authorizer: Authorizer;
  private readonly trustChanges: TrustChangeSource | undefined;
  private readonly onDropped: (error: Error, socket: TLSSocket) => void;
  private readonly reverify = (): void => {
    for (const socket of this.sockets) {
      try {
        authenticatePeer(socket, this.bundleSource, this.authorizer);
      } catch (thrown) {
        this.forget(socket);
        drop(socket);
        this.onDropped(asError(thrown), socket);
      }
    }
  };

  constructor(
    config: {
      bundleSource: X509BundleSource;
      authorizer: Authorizer;
      trustChanges?: TrustChangeSource;
    },
    onDropped: (error: Error, socket: TLSSocket) => void,
  ) {
    this.bundleSource = config.bundleSource;
    this.authorizer = config.authorizer;
    this.trustChanges = config.trustChanges;
    this.onDropped = onDropped;
  }

  /** Keeps `socket` (its peer just verified) under watch until it closes. */
  add(socket: TLSSocket): void {
    if (this.trustChanges === undefined) return;
    if (this.sockets.size === 0) this.trustChanges.on("bundlesChanged", this.reverify);
    this.sockets.add(socket);
    socket.once("close", () => this.forget(socket));
  }

  private forget(socket: TLSSocket): void {
    if (this.sockets.delete(socket) && this.sockets.size === 0) {
      this.trustChanges?.off("bundlesChanged", this.reverify);
    }
  }
}
