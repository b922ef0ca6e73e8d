import { type SecureContextOptions, TLSSocket } from "node:tls";
import { ServerCredentials } from "@grpc/grpc-js";
import { asError } from "../internal/error-message.js";
import type { SpiffeId } from "../spiffeid/spiffeid.js";
import type { MtlsServerConfig, TrustChangeSource } from "../spiffetls/config.js";
import { MtlsError } from "../spiffetls/errors.js";
import { authenticatePeer } from "../spiffetls/peer.js";
import {
  currentSvid,
  noSvidContextOptions,
  SvidTracker,
  svidContextOptions,
} from "../spiffetls/svid-context.js";
import type { X509SvidSource } from "../x509svid/source.js";
import { drop, VerifiedConnections } from "./connections.js";
import { recordGrpcPeer } from "./peer.js";

/** What the gRPC server side needs: MtlsServerConfig, and what to follow for trust changes. */
export interface GrpcMtlsServerConfig extends MtlsServerConfig {
  /**
   * When it reports new bundles ("bundlesChanged", as an X509Source does), the client of
   * every open connection is verified and authorized again, and the connections that no
   * longer pass are closed and reported to `onPeerRejected`. gRPC connections live as
   * long as their channel, so without it a client stays trusted after its trust domain's
   * bundle was removed.
   */
  trustChanges?: TrustChangeSource;
}

/** Says when the SVID changed, as an X509Source does with "svidChanged". */
interface SvidChangeEmitter {
  on(event: "svidChanged", listener: () => void): unknown;
  off(event: "svidChanged", listener: () => void): unknown;
}

function emitsSvidChanges(source: X509SvidSource): source is X509SvidSource & SvidChangeEmitter {
  const candidate = source as Partial<SvidChangeEmitter>;
  return typeof candidate.on === "function" && typeof candidate.off === "function";
}

/**
 * Server credentials for `@grpc/grpc-js` doing SPIFFE mTLS. grpc-js builds its own
 * HTTP/2 server, so there is no server object to put a check in front of, as
 * createMtlsHttpsServer does. Instead the ALPN callback, which Node runs for each
 * handshake on the handshake's own TLSSocket, places the peer check in front of
 * Node's own "secure" listener: a refused peer never reaches HTTP/2, and so no handler.
 */
class MtlsServerCredentials extends ServerCredentials {
  private readonly config: GrpcMtlsServerConfig;
  private readonly installed: SvidTracker<SecureContextOptions>;
  private readonly connections: VerifiedConnections;
  private readonly onSvidChanged = (): void => {
    this.refreshSvid();
  };

  constructor(config: GrpcMtlsServerConfig) {
    const installed = new SvidTracker(svidContextOptions);
    let initial: SecureContextOptions;
    try {
      initial = installed.update(currentSvid(config.svidSource));
    } catch {
      // No SVID yet: a context without one lets handshakes reach the ALPN callback, which
      // refuses them until the SVID is installed (on "svidChanged", or by a handshake).
      initial = noSvidContextOptions();
    }
    // Not an arrow function: Node calls it with the handshake's TLSSocket as `this`.
    function ALPNCallback(this: unknown, info: { protocols: string[] }): string | undefined {
      return credentials.admitHandshake(this, info.protocols);
    }
    super({ requestCert: true, rejectUnauthorized: false, ALPNCallback }, initial);
    const credentials = this;
    this.config = config;
    this.installed = installed;
    this.connections = new VerifiedConnections(config, (error, socket) =>
      config.onPeerRejected?.(error, socket.remoteAddress),
    );
  }

  override _addWatcher(watcher: Parameters<ServerCredentials["_addWatcher"]>[0]): void {
    const { svidSource } = this.config;
    if (this.getWatcherCount() === 0 && emitsSvidChanges(svidSource)) {
      svidSource.on("svidChanged", this.onSvidChanged);
    }
    super._addWatcher(watcher);
    // A server bound after a rotation starts with the SVID current now.
    this.refreshSvid();
  }

  override _removeWatcher(watcher: Parameters<ServerCredentials["_removeWatcher"]>[0]): void {
    super._removeWatcher(watcher);
    const { svidSource } = this.config;
    if (this.getWatcherCount() === 0 && emitsSvidChanges(svidSource)) {
      svidSource.off("svidChanged", this.onSvidChanged);
    }
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }

  /**
   * Installs the source's current SVID on every server using these credentials when it
   * differs from the one installed. Returns the MtlsError "no-svid" when the source has
   * none. A handshake already under way keeps the context it started with.
   */
  private refreshSvid(): Error | undefined {
    let options: SecureContextOptions;
    try {
      options = this.installed.update(currentSvid(this.config.svidSource));
    } catch (thrown) {
      return asError(thrown);
    }
    if (options !== this._getSecureContextOptions()) this.updateSecureContextOptions(options);
    return undefined;
  }

  /**
   * Runs during each handshake (ALPN is in the ClientHello): refuses it when we have no
   * SVID, and makes the peer's verification run before Node hands the connection on.
   */
  admitHandshake(socket: unknown, protocols: string[]): string | undefined {
    // Fail closed should Node ever call this without the socket: no check, no connection.
    if (!(socket instanceof TLSSocket)) return undefined;
    const startedWithSvid = this._getSecureContextOptions()?.cert !== undefined;
    const problem =
      this.refreshSvid() ??
      (startedWithSvid
        ? undefined
        : new MtlsError(
            "no-svid",
            "this handshake began before the first X.509-SVID arrived; the next one presents it",
          ));
    if (problem) {
      this.config.onPeerRejected?.(problem, socket.remoteAddress);
      return undefined;
    }
    if (!protocols.includes("h2")) return undefined;
    this.guardSecure(socket);
    return "h2";
  }

  /**
   * Puts the SPIFFE check in front of the socket's "secure" listeners (Node's own, which
   * passes the socket to the HTTP/2 server): they run only for an accepted peer.
   */
  private guardSecure(socket: TLSSocket): void {
    const downstream = socket.listeners("secure");
    socket.removeAllListeners("secure");
    socket.once("secure", () => {
      let peerId: SpiffeId;
      try {
        peerId = authenticatePeer(socket, this.config.bundleSource, this.config.authorizer).id;
      } catch (thrown) {
        const remoteAddress = socket.remoteAddress;
        drop(socket);
        this.config.onPeerRejected?.(asError(thrown), remoteAddress);
        return;
      }
      // grpc-js reports the peer certificate to handlers only for an authorized socket;
      // Node's own verification cannot pass (no CA store), ours just did.
      socket.authorized = true;
      recordGrpcPeer(socket, peerId);
      this.connections.add(socket);
      this.config.onPeerAccepted?.(peerId, socket);
      for (const listener of downstream) Reflect.apply(listener, socket, []);
    });
  }
}

/**
 * `@grpc/grpc-js` server credentials for SPIFFE mTLS, like go-spiffe's
 * `grpccredentials.MTLSServerCredentials`: the server presents the source's current SVID
 * and accepts only clients whose chain verifies against the bundle of their own trust
 * domain and whose ID the authorizer accepts. A refused client is disconnected when its
 * handshake completes, before any RPC; `onPeerRejected` gets the library's error.
 * Handlers read the client's ID with {@link peerIdFromCall}.
 *
 * A new SVID is installed as soon as an X509Source reports it ("svidChanged"); with any
 * other source, at the next handshake. Bundles are read at every handshake, so a new or
 * removed federated bundle counts from the next connection, and with `trustChanges` for
 * the open ones too.
 */
export function mtlsServerCredentials(config: GrpcMtlsServerConfig): ServerCredentials {
  return new MtlsServerCredentials(config);
}
