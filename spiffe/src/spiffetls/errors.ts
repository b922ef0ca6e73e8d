import { SpiffeError } from "../errors/spiffe-error.js";

/** What went wrong around an mTLS connection, apart from the peer's SVID and ID checks. */
export type MtlsErrorCode =
  /** We have no SVID to present (the source has none yet, or withdrew it). */
  | "no-svid"
  /** The peer finished the handshake without presenting a certificate. */
  | "no-peer-certificate"
  /** The connector was asked for something other than https. */
  | "unsupported-protocol"
  /** The TCP connection or the TLS handshake did not complete in time. */
  | "connect-timeout"
  /** The connection closed before the peer was authenticated. */
  | "connection-closed";

/** A failure around an mTLS connection (no SVID of ours, none from the peer, a time-out...). */
export class MtlsError extends SpiffeError {
  /** What went wrong. */
  declare readonly code: MtlsErrorCode;

  constructor(code: MtlsErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}
