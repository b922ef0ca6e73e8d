import { SpiffeError } from "../errors/spiffe-error.js";
import type { SpiffeId, TrustDomain } from "../spiffeid/spiffeid.js";

export class AuthorizationError extends SpiffeError {
  /** The peer that was refused. */
  readonly peerId: SpiffeId;

  constructor(peerId: SpiffeId, message: string) {
    super("unauthorized", message);
    this.peerId = peerId;
  }
}

/**
 * Decides whether an authenticated peer may talk to us. Runs only after the peer's chain
 * has been verified; throws an AuthorizationError to refuse.
 */
export type Authorizer = (peerId: SpiffeId) => void;

export function authorizeAny(): Authorizer {
  return () => {};
}

export function authorizeID(expected: SpiffeId): Authorizer {
  return (peerId) => {
    if (!peerId.equals(expected)) {
      throw new AuthorizationError(peerId, `peer ${peerId} is not the expected ${expected}`);
    }
  };
}

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
