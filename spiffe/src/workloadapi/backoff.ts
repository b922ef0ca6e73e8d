import { SpiffeError } from "../errors/spiffe-error.js";

/** Backoff settings that cannot work (negative, zero, or a cap below the first delay). */
export class BackoffOptionsError extends SpiffeError {}

export const DEFAULT_INITIAL_BACKOFF_MS = 500;
/**
 * A workload often starts before its registration entry exists and is refused
 * (PERMISSION_DENIED) until the agent's next sync, every 5 s by default. With a longer
 * cap it would wait up to that long after the entry appears; 5 s keeps that wait about
 * one sync, at the cost of one cheap call per workload every few seconds.
 */
export const DEFAULT_MAX_BACKOFF_MS = 5_000;

/**
 * Capped exponential backoff with full jitter: the n-th delay is uniformly random in
 * [0, min(max, initial * 2^n)). Jitter spreads the reconnects of many workloads after an
 * agent restart, so they do not all hit the agent at once.
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  private attempt = 0;
  private readonly random: () => number;

  constructor(
    options: { initialMs?: number; maxMs?: number } = {},
    random: () => number = Math.random,
  ) {
    const initialMs = options.initialMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    const maxMs = options.maxMs ?? Math.max(DEFAULT_MAX_BACKOFF_MS, initialMs);
    if (!Number.isFinite(initialMs) || initialMs <= 0) {
      throw new BackoffOptionsError(
        "invalid-backoff",
        `backoff.initialMs must be a positive number of milliseconds, not ${initialMs}`,
      );
    }
    if (!Number.isFinite(maxMs) || maxMs < initialMs) {
      throw new BackoffOptionsError(
        "invalid-backoff",
        `backoff.maxMs must be a number of milliseconds >= initialMs (${initialMs}), not ${maxMs}`,
      );
    }
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.random = random;
  }

  /** The delay before the next attempt; each call doubles the ceiling up to the cap. */
  next(): number {
    // Stop doubling once past the cap so the exponent cannot overflow to Infinity.
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 52));
    if (ceiling < this.maxMs) this.attempt += 1;
    return Math.floor(this.random() * ceiling);
  }

  /**
   * The delay before asking again after an established stream was refused
   * (PERMISSION_DENIED): between one and two first delays (500-1000 ms by default), within
   * the cap. A SPIRE Agent refuses its workloads for a moment (about 100-200 ms) while it
   * renews its own SVID; re-asking later than that tells such a refusal from a real one,
   * and soon enough to know well within an X509Source's grace period. Jitter spreads the
   * workloads that were refused together. Does not advance the exponential schedule.
   */
  recheck(): number {
    return Math.floor(Math.min(this.maxMs, this.initialMs * (1 + this.random())));
  }

  /** After a good response: the next failure starts from the first delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
