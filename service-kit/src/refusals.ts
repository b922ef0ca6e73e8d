import type { X509Source } from "@federation-demo/spiffe";

/** What /healthz shows about Workload API responses the source refused. */
export interface RefusedUpdatesReport {
  /** Responses refused and ignored since start (the SVID in service stayed). */
  count: number;
  /** The latest one: when, the refusal's code, and the rule it broke, if any. */
  last: { at: string; code: string; rule: string | null; reason: string } | null;
}

/**
 * The source's refused updates for /healthz: a climbing count means the agent (or what
 * answers on its socket) keeps sending SVIDs that must not be served.
 */
export function refusedUpdatesReport(
  source: Pick<X509Source, "refusedUpdates" | "lastRefusal">,
): RefusedUpdatesReport {
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
