import { EventEmitter } from "node:events";
import { type X509Bundle, X509BundleSet, type X509BundleSource } from "../bundle/x509bundle.js";
import { SpiffeError } from "../errors/spiffe-error.js";
import type { TrustDomain } from "../spiffeid/spiffeid.js";
import type { X509SvidSource } from "../x509svid/source.js";
import type { X509Svid } from "../x509svid/svid.js";
import type { WorkloadApiAddress } from "./address.js";
import { describeAgentProblem } from "./agent-problem.js";
import {
  type Watch,
  WorkloadApiClient,
  type WorkloadApiClientOptions,
  type X509Context,
} from "./client.js";
import type { WorkloadApiError } from "./errors.js";

/**
 * Why an X509Source cannot serve: "timeout" (ready() waited too long), "failed" (the
 * agent gave an answer that will not be retried, e.g. INVALID_ARGUMENT), "closed", or
 * "invalid-option" (the constructor was given a setting that cannot work).
 */
export class X509SourceError extends SpiffeError {}

/** Default of X509SourceOptions.permissionDeniedGraceMs. */
export const DEFAULT_PERMISSION_DENIED_GRACE_MS = 2_000;
/** The SPIFFE conformance tests expect an SVID to stop being used within 5 s of the denial. */
const MAX_PERMISSION_DENIED_GRACE_MS = 5_000;
/** setTimeout's longest delay; a later expiry is reached in several steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** An X509Source's settings: the client's, and how the source picks and keeps its SVID. */
export interface X509SourceOptions extends WorkloadApiClientOptions {
  /** Picks the SVID to serve; default the first (the default identity). */
  pickSvid?: (svids: readonly X509Svid[]) => X509Svid;
  /**
   * How long the SVID and bundles are still served after PERMISSION_DENIED ends a stream
   * that was serving them, while the source asks the agent again (default 2000 ms, at
   * most 5000; 0 withdraws them at once). A new SVID ends the wait; a second refusal
   * withdraws them at once.
   */
  permissionDeniedGraceMs?: number;
}

/** The events an X509Source emits, with their arguments. */
export interface X509SourceEvents {
  /**
   * The served SVID changed: the first one arrived, it was rotated, or it was withdrawn
   * (`svid` undefined). Not emitted when the agent re-sends the same SVID.
   */
  svidChanged: [svid: X509Svid | undefined];
  /**
   * The trust changed: a trust domain's bundle arrived or was removed, or its CA
   * certificates changed. Not emitted when the agent re-sends the same bundles.
   * Connections authenticated under `previous` may no longer be trusted.
   */
  bundlesChanged: [bundles: X509BundleSet, previous: X509BundleSet];
  /**
   * The agent sent a response (or the SVID was withdrawn), changed or not. Emitted after
   * svidChanged and bundlesChanged.
   */
  update: [];
  /** A Workload API error; the source keeps retrying unless it is closed. */
  error: [Error];
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/** The source's own setting, checked like the backoff settings: clear words on what is wrong. */
function graceFrom(options: X509SourceOptions): number {
  const graceMs = options.permissionDeniedGraceMs ?? DEFAULT_PERMISSION_DENIED_GRACE_MS;
  if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > MAX_PERMISSION_DENIED_GRACE_MS) {
    throw new X509SourceError(
      "invalid-option",
      `permissionDeniedGraceMs must be a number of milliseconds from 0 to ${MAX_PERMISSION_DENIED_GRACE_MS}, not ${graceMs}`,
    );
  }
  return graceMs;
}

/** Whether `svid`'s leaf is past its notAfter at `nowMs` (notAfter itself is still valid). */
function isExpired(svid: X509Svid, nowMs: number): boolean {
  return nowMs > svid.expiresAt.getTime();
}

/**
 * The workload's current X.509-SVID and bundles, kept up to date from the Workload API
 * stream. Serves as both X509SvidSource and X509BundleSource for the TLS helpers.
 *
 * PERMISSION_DENIED on an established stream means the SVID must no longer be used, but
 * a SPIRE Agent also says it for a moment while it renews its own SVID (during a CA
 * rotation). So the source keeps serving the current SVID and bundles while it asks
 * again (Backoff#recheck, 500-1000 ms by default): a new SVID replaces them without a
 * gap; a second refusal, or the end of `permissionDeniedGraceMs` without an SVID,
 * withdraws them (getX509Svid() returns undefined) until the agent issues one again. The
 * bundles go too, since the agent no longer vouches for them either. An expired SVID is
 * never served: it is withdrawn at its notAfter, and one that arrives expired is ignored.
 *
 * "error" is only emitted when someone listens for it, so an unobserved failure never
 * crashes the process (Node throws on an "error" event without a listener); the source
 * keeps retrying either way and `lastError` tells what the agent last answered.
 */
export class X509Source
  extends EventEmitter<X509SourceEvents>
  implements X509SvidSource, X509BundleSource
{
  /** The Workload API address in use. */
  readonly address: WorkloadApiAddress;

  private readonly client: WorkloadApiClient;
  private readonly pickSvid: (svids: readonly X509Svid[]) => X509Svid;
  private readonly graceMs: number;
  private readonly watch: Watch;
  /** The agent's latest SVID; served only while it has not expired (see getX509Svid). */
  private svid: X509Svid | undefined;
  private bundles = new X509BundleSet();
  private latestError: WorkloadApiError | undefined;
  private fatal: X509SourceError | undefined;
  private readonly waiters = new Set<Waiter>();
  /** Set while a refusal waits to be confirmed or cleared: withdraws when it fires. */
  private graceTimer: NodeJS.Timeout | undefined;
  /** Withdraws the SVID when it expires. */
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: X509SourceOptions = {}) {
    super();
    this.pickSvid = options.pickSvid ?? ((svids) => svids[0] as X509Svid);
    this.graceMs = graceFrom(options);
    this.client = new WorkloadApiClient(options);
    this.address = this.client.address;
    this.watch = this.client.watchX509Context({
      onUpdate: (context) => this.update(context),
      onError: (error, willRetry) => this.failed(error, willRetry),
    });
  }

  private update(context: X509Context): void {
    this.latestError = undefined;
    this.endGrace();
    this.replace(this.pickSvid(context.svids), context.bundles);
    if (this.getX509Svid() === undefined) return; // expired on arrival: keep waiting
    for (const waiter of [...this.waiters]) this.settle(waiter, undefined);
  }

  /** Installs a new state, then tells listeners what really changed in what is served. */
  private replace(svid: X509Svid | undefined, bundles: X509BundleSet): void {
    const previousSvid = this.getX509Svid();
    const previousBundles = this.bundles;
    this.svid = svid;
    this.bundles = bundles;
    this.watchExpiry();
    const served = this.getX509Svid();
    // Both are installed before any event, so every listener sees the whole new state.
    if (previousSvid === undefined ? served !== undefined : !previousSvid.equals(served))
      this.emit("svidChanged", served);
    if (!previousBundles.equals(bundles)) this.emit("bundlesChanged", bundles, previousBundles);
    this.emit("update");
  }

  /** Arms a timer that withdraws the SVID at its expiry (in steps setTimeout can take). */
  private watchExpiry(): void {
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const svid = this.svid;
    if (svid === undefined || this.closed || isExpired(svid, Date.now())) return;
    // +1: the SVID is still valid at its notAfter, expired one millisecond later.
    const delayMs = Math.min(MAX_TIMER_MS, svid.expiresAt.getTime() - Date.now() + 1);
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      if (this.svid !== svid) return;
      if (!isExpired(svid, Date.now())) {
        this.watchExpiry();
        return;
      }
      this.svid = undefined;
      this.emit("svidChanged", undefined);
      this.emit("update");
    }, delayMs);
    this.expiryTimer.unref();
  }

  private withdraw(): void {
    this.endGrace();
    if (this.svid === undefined && this.bundles.size === 0) return;
    this.replace(undefined, new X509BundleSet());
  }

  private endGrace(): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }

  /**
   * PERMISSION_DENIED: the first refusal of a serving source starts the grace period;
   * a refusal during it confirms the denial. Other errors leave the grace period running.
   */
  private denied(): void {
    const serving = this.getX509Svid() !== undefined || this.bundles.size > 0;
    if (this.graceTimer !== undefined || !serving || this.graceMs === 0) {
      this.withdraw();
      return;
    }
    this.graceTimer = setTimeout(() => this.withdraw(), this.graceMs);
    this.graceTimer.unref();
  }

  private failed(error: WorkloadApiError, willRetry: boolean): void {
    this.latestError = error;
    if (error.code === "PERMISSION_DENIED") this.denied();
    if (!willRetry) {
      this.fatal = new X509SourceError(
        "failed",
        `the X509Source for ${this.address} stopped: ${error.message}`,
        { cause: error },
      );
      for (const waiter of [...this.waiters]) this.settle(waiter, this.fatal);
    }
    if (this.listenerCount("error") > 0) this.emit("error", error);
  }

  private settle(waiter: Waiter, error: Error | undefined): void {
    if (!this.waiters.delete(waiter)) return;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    if (error === undefined) waiter.resolve();
    else waiter.reject(error);
  }

  private closedError(): X509SourceError {
    return new X509SourceError("closed", `the X509Source for ${this.address} is closed`);
  }

  /**
   * Resolves once an SVID is available (at once if one is). With `timeoutMs`, rejects
   * with an X509SourceError (code "timeout") whose message says what the agent last
   * answered, e.g. that no registration entry matches this workload yet. Rejects at once
   * ("failed") after an error that will not be retried, and ("closed") on close().
   */
  ready(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.getX509Svid() !== undefined) return Promise.resolve();
    if (this.fatal !== undefined) return Promise.reject(this.fatal);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      const { timeoutMs } = options;
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          // The client's error already says what the agent's answer means.
          const answer =
            this.latestError?.message ?? describeAgentProblem("no-answer-yet", this.address);
          this.settle(
            waiter,
            new X509SourceError(
              "timeout",
              `no X.509-SVID from the Workload API within ${timeoutMs} ms: ${answer}`,
              { cause: this.latestError },
            ),
          );
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  /** The SVID to present, or undefined: none yet, withdrawn, or expired. */
  getX509Svid(): X509Svid | undefined {
    const svid = this.svid;
    return svid === undefined || isExpired(svid, Date.now()) ? undefined : svid;
  }

  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined {
    return this.bundles.getX509BundleForTrustDomain(trustDomain);
  }

  /** The current bundle set (empty before the first response). */
  getX509Bundles(): X509BundleSet {
    return this.bundles;
  }

  /** The last error the agent answered with, if the stream is failing now. */
  get lastError(): Error | undefined {
    return this.latestError;
  }

  /** Ends the stream and all timers; idempotent. Pending ready() calls reject ("closed"). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endGrace();
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.watch.cancel();
    this.client.close();
    const error = this.closedError();
    for (const waiter of [...this.waiters]) this.settle(waiter, error);
  }
}
