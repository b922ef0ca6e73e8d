import type { X509Source } from "@federation-demo/spiffe";
import type { Logger } from "pino";

/** How often to repeat "still waiting" while the agent has no SVID for us. */
export const WAITING_LOG_INTERVAL_MS = 10_000;

/**
 * Logs what the Workload API does for this workload: the first SVID, each rotation, an
 * SVID withdrawn, and - at most every WAITING_LOG_INTERVAL_MS, never in a hot loop - why
 * there is no SVID yet (e.g. PERMISSION_DENIED: no registration entry matches us).
 * Returns a function that stops the logging.
 */
export function logIdentityChanges(source: X509Source, log: Logger): () => void {
  let current: string | undefined;
  let currentTrustDomains = "";
  let lastWaitingLog = 0;
  let lastErrorMessage: string | undefined;

  const logWaiting = (force: boolean) => {
    if (source.getX509Svid()) return;
    const now = Date.now();
    const reason = source.lastError?.message;
    if (!force && reason === lastErrorMessage && now - lastWaitingLog < WAITING_LOG_INTERVAL_MS) {
      return;
    }
    lastWaitingLog = now;
    lastErrorMessage = reason;
    log.warn(
      { socket: source.address, agentSaid: reason ?? "nothing yet" },
      "still waiting for an X.509 SVID: is the SPIRE agent running, and does a registration entry match this workload?",
    );
  };

  const onUpdate = () => {
    const svid = source.getX509Svid();
    if (!svid) {
      if (current !== undefined) log.warn({ socket: source.address }, "X.509 SVID withdrawn");
      current = undefined;
      return;
    }
    const fingerprint = svid.leaf.fingerprint256;
    const trustDomains = source
      .getX509Bundles()
      .trustDomains()
      .map((td) => td.name);
    const trustDomainList = trustDomains.join(", ");
    if (fingerprint !== current) {
      const details = {
        spiffeId: svid.id.toString(),
        expiresAt: svid.expiresAt.toISOString(),
        trustDomains,
      };
      log.info(details, current === undefined ? "X.509 SVID received" : "X.509 SVID rotated");
    } else if (trustDomainList !== currentTrustDomains) {
      // Federation at work: a trust domain's bundle arrived or was removed.
      log.info({ trustDomains }, "trust bundles changed");
    }
    current = fingerprint;
    currentTrustDomains = trustDomainList;
  };

  const onError = () => {
    onUpdate();
    if (source.getX509Svid()) {
      log.warn({ socket: source.address, error: source.lastError?.message }, "Workload API error");
      return;
    }
    logWaiting(false);
  };

  log.info({ socket: source.address }, "waiting for an X.509 SVID");
  source.on("update", onUpdate);
  source.on("error", onError);
  const timer = setInterval(() => logWaiting(true), WAITING_LOG_INTERVAL_MS);
  timer.unref();
  onUpdate();
  return () => {
    clearInterval(timer);
    source.off("update", onUpdate);
    source.off("error", onError);
  };
}
