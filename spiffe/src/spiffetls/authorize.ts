import type { X509Certificate } from "node:crypto";
import { SpiffeError } from "../errors/spiffe-error.js";
import type { SpiffeId, TrustDomain } from "../spiffeid/spiffeid.js";
import type { VerifiedX509Svid } from "../x509svid/verify.js";

/** An authenticated peer that the authorizer refused; `code` is always "unauthorized". */
export class AuthorizationError extends SpiffeError {
  /** The peer that was refused. */
  readonly peerId: SpiffeId;

  /** `message` says why `peerId` may not connect. */
  constructor(peerId: SpiffeId, message: string) {
    super("unauthorized", message);
    this.peerId = peerId;
  }
}

/**
 * Decides whether an authenticated peer may talk to us. Runs only after the peer's chain
 * has been verified, with the peer's ID and the verified path (leaf first, ending with
 * the bundle certificate that vouched for it, see {@link VerifiedX509Svid}); throws an
 * AuthorizationError to refuse.
 */
export type Authorizer = (peerId: SpiffeId, verifiedChain: readonly X509Certificate[]) => void;

/** Accepts every authenticated peer, whatever its ID. */
export function authorizeAny(): Authorizer {
  return () => {};
}

/** Accepts only the peer whose ID is exactly `expected`. */
export function authorizeID(expected: SpiffeId): Authorizer {
  return (peerId) => {
    if (!peerId.equals(expected)) {
      throw new AuthorizationError(peerId, `peer ${peerId} is not the expected ${expected}`);
    }
  };
}

/** Accepts a peer whose ID is any of `allowed`. */
export function authorizeOneOf(...allowed: SpiffeId[]): Authorizer {
  return (peerId) => {
    if (!allowed.some((id) => id.equals(peerId))) {
      throw new AuthorizationError(
        peerId,
        `peer ${peerId} is not one of ${allowed.map(String).join(", ")}`,
      );
    }
  };
}

/** Accepts any peer whose ID is in `trustDomain`. */
export function authorizeMemberOf(trustDomain: TrustDomain): Authorizer {
  return (peerId) => {
    if (!peerId.memberOf(trustDomain)) {
      throw new AuthorizationError(
        peerId,
        `peer ${peerId} is not a member of trust domain ${trustDomain}`,
      );
    }
  };
}
