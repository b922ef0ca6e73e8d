import type { Logger } from "pino";
import type { X509Source } from "spiffe-node";
import { adviseOnMissingSvid } from "./agent-advice.js";

/** How often to repeat "still waiting" while the agent has no SVID for us. */
export const WAITING_LOG_INTERVAL_MS = 10_000;

/**
 * Logs what the Workload API does for this workload: the first SVID, each rotation, an
 * SVID withdrawn, and - at most every WAITING_LOG_INTERVAL_MS, never in a hot loop - why
 * there is no SVID yet, in plain words with the tutorial step that fixes it (e.g. no
 * registration entry matches us: run ./3-create-registration-entries.sh), the agent's
 * full answer in the `agentSaid` field.
 * Returns a function that stops the logging.
 */
export function logIdentityChanges(source: X509Source, log: Logger): () => void {
  let current: string | undefined;
  let currentTrustDomains = "";
  let lastWaitingLog = 0;
  let lastProblem: string | undefined;

  const logWaiting = (force: boolean) => {
    if (source.getX509Svid()) return;
    const now = Date.now();
    const advice = adviseOnMissingSvid(source);
    const problem = `${advice.kind} ${advice.detail}`;
    if (!force && problem === lastProblem && now - lastWaitingLog < WAITING_LOG_INTERVAL_MS) {
      return;
    }
    lastWaitingLog = now;
    lastProblem = problem;
    log.warn(
      {
        socket: source.address.address,
        problem: advice.kind,
        agentSaid: advice.detail ?? "nothing yet",
      },
      `still waiting for an X.509 SVID: ${advice.reason}${advice.fix ? ` ${advice.fix}` : ""}`,
    );
  };

  const onUpdate = () => {
    const svid = source.getX509Svid();
    if (!svid) {
      if (current !== undefined)
        log.warn({ socket: source.address.address }, "X.509 SVID withdrawn");
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
      log.warn(
        { socket: source.address.address, error: source.lastError?.message },
        "Workload API error",
      );
      return;
    }
    logWaiting(false);
  };

  log.info({ socket: source.address.address }, "waiting for an X.509 SVID");
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
