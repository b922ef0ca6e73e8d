import type { Socket } from "node:net";
import type { SecureContext } from "node:tls";
import {
  CallCredentials,
  ChannelCredentials,
  type ChannelOptions,
  experimental,
} from "@grpc/grpc-js";
import { openMtlsSocket } from "../spiffetls/client.js";
import type { MtlsClientConfig, TrustChangeSource } from "../spiffetls/config.js";
import { clientContexts, currentSvid, type SvidTracker } from "../spiffetls/svid-context.js";
import { VerifiedConnections } from "./connections.js";

/** What the gRPC client side needs: MtlsClientConfig, and who to tell about refusals. */
export interface GrpcMtlsClientConfig extends MtlsClientConfig {
  /**
   * Called for each connection attempt that failed SPIFFE mTLS: the server was refused
   * (VerificationError, AuthorizationError) or the connection failed (MtlsError). grpc-js
   * only puts the error's text into the failed call's details; this gets the error itself.
   */
  onPeerRejected?: (error: Error) => void;
  /**
   * When it reports new bundles ("bundlesChanged", as an X509Source does), the server of
   * every open connection is verified and authorized again; a connection that no longer
   * passes is closed (grpc-js then reconnects, and the new connection is checked under
   * the new bundles) and reported to `onPeerRejected`.
   */
  trustChanges?: TrustChangeSource;
}

/** The host and port a channel target names, for SNI and messages. */
function hostAndPort(target: experimental.GrpcUri): { host: string; port: number } {
  if (target.scheme === "unix") return { host: "localhost", port: 0 };
  const hostPort = experimental.splitHostPort(target.path);
  return { host: hostPort?.host ?? target.path, port: hostPort?.port ?? 443 };
}

/**
 * Channel credentials for `@grpc/grpc-js` doing SPIFFE mTLS: each connection is made by
 * openMtlsSocket, the same path as the library's HTTPS client, so the server is
 * authenticated and authorized before grpc-js starts HTTP/2 on the socket.
 */
class MtlsChannelCredentials extends ChannelCredentials {
  private readonly config: GrpcMtlsClientConfig;
  private readonly contexts: SvidTracker<SecureContext> = clientContexts();
  private readonly connections: VerifiedConnections;

  constructor(config: GrpcMtlsClientConfig) {
    super();
    this.config = config;
    this.connections = new VerifiedConnections(config, (error) => config.onPeerRejected?.(error));
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(
    channelTarget: experimental.GrpcUri,
    options: ChannelOptions,
    callCredentials?: CallCredentials,
  ): experimental.SecureConnector {
    const { host, port } = hostAndPort(channelTarget);
    const servername = options["grpc.ssl_target_name_override"];
    return {
      connect: (socket: Socket) =>
        new Promise((resolve, reject) => {
          openMtlsSocket(
            this.config,
            () => this.contexts.update(currentSvid(this.config.svidSource)),
            // grpc-js listens for errors only after some asynchronous steps.
            { host, port, servername, socket, ALPNProtocols: ["h2"], keepErrorListener: true },
            (error, tlsSocket) => {
              if (error) {
                this.config.onPeerRejected?.(error);
                reject(error);
              } else {
                this.connections.add(tlsSocket);
                resolve({ socket: tlsSocket, secure: true });
              }
            },
          );
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => callCredentials ?? CallCredentials.createEmpty(),
      destroy: () => {},
    };
  }
}

/**
 * `@grpc/grpc-js` channel credentials for SPIFFE mTLS, like go-spiffe's
 * `grpccredentials.MTLSClientCredentials`: each connection presents the source's current
 * SVID and accepts the server only if its chain verifies against the bundle of its own
 * trust domain and the authorizer accepts its ID. A refused server fails the connection
 * (calls fail with `UNAVAILABLE`, the error's text in their details) and
 * `onPeerRejected` gets the library's error. The target's host name is never checked
 * against the certificate: the SPIFFE ID is the server's identity.
 */
export function mtlsClientCredentials(config: GrpcMtlsClientConfig): ChannelCredentials {
  return new MtlsChannelCredentials(config);
}
