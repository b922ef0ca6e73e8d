import type { X509Source } from "spiffe-node";

/** What a source must tell for /healthz. */
export type HealthSource = Pick<X509Source, "getX509Svid" | "refusedUpdates" | "lastRefusal">;

/** What /healthz shows about Workload API responses the source refused. */
export interface RefusedUpdatesReport {
  /** Responses refused and ignored since start (the SVID in service stayed). */
  count: number;
  /** The latest one: when, the refusal's code, and the rule it broke, if any. */
  last: { at: string; code: string; rule: string | null; reason: string } | null;
}

/** The identity part of a service's /healthz: whether it has an SVID, and which. */
export interface SvidHealth {
  /** Whether the service has an SVID to present now. */
  hasSvid: boolean;
  /** Its SPIFFE ID, or null without an SVID. */
  spiffeId: string | null;
  /** When it expires (ISO 8601), or null without an SVID. */
  svidExpiresAt: string | null;
  /**
   * Responses the source refused (bad SVIDs from the agent): a climbing count means the
   * agent, or what answers on its socket, keeps sending SVIDs that must not be served.
   */
  refusedSvidUpdates: RefusedUpdatesReport;
}

function refusedUpdatesReport(source: HealthSource): RefusedUpdatesReport {
  const last = source.lastRefusal;
  const cause = last?.reason.cause;
  const rule =
    cause instanceof Error && "code" in cause && typeof cause.code === "string" ? cause.code : null;
  return {
    count: source.refusedUpdates,
    last: last
      ? { at: last.at.toISOString(), code: last.reason.code, rule, reason: last.reason.message }
      : null,
  };
}

/** The identity part of /healthz, read from the source at this moment. */
export function svidHealth(source: HealthSource): SvidHealth {
  const svid = source.getX509Svid();
  return {
    hasSvid: svid !== undefined,
    spiffeId: svid?.id.toString() ?? null,
    svidExpiresAt: svid?.expiresAt.toISOString() ?? null,
    refusedSvidUpdates: refusedUpdatesReport(source),
  };
}
