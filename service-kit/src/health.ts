import type { X509SvidSource } from "spiffe-node";

/** The identity part of a service's /healthz: whether it has an SVID, and which. */
export interface SvidHealth {
  /** Whether the service has an SVID to present now. */
  hasSvid: boolean;
  /** Its SPIFFE ID, or null without an SVID. */
  spiffeId: string | null;
  /** When it expires (ISO 8601), or null without an SVID. */
  svidExpiresAt: string | null;
}

/** The identity part of /healthz, read from the source at this moment. */
export function svidHealth(source: X509SvidSource): SvidHealth {
  const svid = source.getX509Svid();
  return {
    hasSvid: svid !== undefined,
    spiffeId: svid?.id.toString() ?? null,
    svidExpiresAt: svid?.expiresAt.toISOString() ?? null,
  };
}
