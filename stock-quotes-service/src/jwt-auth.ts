import type { NextFunction, Request, Response } from "express";
import type { Logger } from "pino";
import {
  type JwtBundleSource,
  JwtSvidError,
  parseAndValidateJwtSvid,
  type SpiffeId,
} from "spiffe-node";

export interface JwtAuthOptions {
  /** The JWT bundles of every trust domain, federated ones included (a JwtSource). */
  bundles: JwtBundleSource;
  /** This service's own SPIFFE ID, the audience tokens must name; undefined before the SVID. */
  audience: () => string | undefined;
  /** The only caller that gets quotes. */
  authorizedId: SpiffeId;
  log: Logger;
}

/** The bearer token of `Authorization: Bearer <token>`, or a reason there is none. */
function bearerToken(header: string | undefined): string | { reason: string } {
  if (header === undefined) return { reason: "no Authorization header" };
  const match = /^Bearer +([^ ]+) *$/i.exec(header);
  return match?.[1] ?? { reason: "the Authorization header is not 'Bearer <token>'" };
}

/**
 * Express middleware for the JWT road: accepts a request only with a JWT-SVID for this
 * service's audience, validated locally against the bundle of the token's own trust
 * domain (broker.org's arrives by federation), from the authorized SPIFFE ID. Anything
 * else gets 401 (403 for a valid token of another workload), with the reason logged and
 * only a short code sent back.
 */
export function requireJwtSvid({ bundles, audience, authorizedId, log }: JwtAuthOptions) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const refuse = (status: 401 | 403, code: string, reason: string, peer?: string) => {
      log.warn({ remoteAddress: req.socket.remoteAddress, code, reason, peer }, "JWT-SVID refused");
      if (status === 401) res.set("WWW-Authenticate", `Bearer error="invalid_token"`);
      res.status(status).json({ error: status === 401 ? "unauthenticated" : "forbidden", code });
    };
    const token = bearerToken(req.headers.authorization);
    if (typeof token !== "string") {
      refuse(401, "missing-token", token.reason);
      return;
    }
    const expected = audience();
    if (expected === undefined) {
      refuse(401, "no-svid", "this service has no SVID yet, so it cannot tell its own audience");
      return;
    }
    try {
      const svid = await parseAndValidateJwtSvid(token, bundles, expected);
      if (!svid.id.equals(authorizedId)) {
        refuse(403, "unauthorized", `${svid.id} is not ${authorizedId}`, svid.id.toString());
        return;
      }
      res.locals.peer = svid.id.toString();
      next();
    } catch (error) {
      if (error instanceof JwtSvidError) refuse(401, error.code, error.message);
      else next(error);
    }
  };
}
