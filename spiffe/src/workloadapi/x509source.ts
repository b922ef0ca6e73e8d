import { EventEmitter } from "node:events";
import { type X509Bundle, X509BundleSet, type X509BundleSource } from "../bundle.js";
import { SpiffeError } from "../errors.js";
import type { TrustDomain } from "../spiffeid.js";
import type { X509Svid, X509SvidSource } from "../x509svid.js";
import {
  type Watch,
  WorkloadApiClient,
  type WorkloadApiClientOptions,
  type WorkloadApiError,
  type X509Context,
} from "./client.js";

/**
 * Why an X509Source cannot serve: "timeout" (ready() waited too long), "failed" (the
 * agent gave an answer that will not be retried, e.g. INVALID_ARGUMENT) or "closed".
 */
export class X509SourceError extends SpiffeError {}

export interface X509SourceOptions extends WorkloadApiClientOptions {
  /** Picks the SVID to serve; default the first (the default identity). */
  pickSvid?: (svids: readonly X509Svid[]) => X509Svid;
}

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

/** Same certificate chain (which includes the ID); a re-sent SVID is not a change. */
function sameSvid(a: X509Svid | undefined, b: X509Svid | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const theirs = b.certificates;
  return (
    a.certificates.length === theirs.length &&
    a.certificates.every((certificate, i) => theirs[i]?.raw.equals(certificate.raw) === true)
  );
}

/** What the agent's last answer means for someone waiting on an SVID. */
function describeLastAnswer(error: WorkloadApiError | undefined, address: string): string {
  if (error === undefined) return `no usable answer from the agent at ${address}`;
  if (error.code === "PERMISSION_DENIED") {
    return `the agent at ${address} answered PERMISSION_DENIED: no registration entry matches this workload yet (or the agent refused it)`;
  }
  return error.message;
}

/**
 * The workload's current X.509-SVID and bundles, kept up to date from the Workload API
 * stream. Serves as both X509SvidSource and X509BundleSource for the TLS helpers.
 * After PERMISSION_DENIED on an established stream, the SVID is withdrawn
 * (getX509Svid() returns undefined) until the agent issues one again; so are the
 * bundles, since the agent no longer vouches for them either.
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
  readonly address: string;

  private readonly client: WorkloadApiClient;
  private readonly pickSvid: (svids: readonly X509Svid[]) => X509Svid;
  private readonly watch: Watch;
  private svid: X509Svid | undefined;
  private bundles = new X509BundleSet();
  private latestError: WorkloadApiError | undefined;
  private fatal: X509SourceError | undefined;
  private readonly waiters = new Set<Waiter>();
  private closed = false;

  constructor(options: X509SourceOptions = {}) {
    super();
    this.pickSvid = options.pickSvid ?? ((svids) => svids[0] as X509Svid);
    this.client = new WorkloadApiClient(options);
    this.address = this.client.address;
    this.watch = this.client.watchX509Context({
      onUpdate: (context) => this.update(context),
      onError: (error, willRetry) => this.failed(error, willRetry),
    });
  }

  private update(context: X509Context): void {
    this.latestError = undefined;
    this.replace(this.pickSvid(context.svids), context.bundles);
    for (const waiter of [...this.waiters]) this.settle(waiter, undefined);
  }

  /** Installs a new state, then tells listeners what really changed. */
  private replace(svid: X509Svid | undefined, bundles: X509BundleSet): void {
    const previousSvid = this.svid;
    const previousBundles = this.bundles;
    this.svid = svid;
    this.bundles = bundles;
    // Both are installed before any event, so every listener sees the whole new state.
    if (!sameSvid(previousSvid, svid)) this.emit("svidChanged", svid);
    if (!previousBundles.equals(bundles)) this.emit("bundlesChanged", bundles, previousBundles);
    this.emit("update");
  }

  private failed(error: WorkloadApiError, willRetry: boolean): void {
    this.latestError = error;
    if (error.code === "PERMISSION_DENIED" && this.svid !== undefined) {
      this.replace(undefined, new X509BundleSet());
    }
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
    if (this.svid !== undefined) return Promise.resolve();
    if (this.fatal !== undefined) return Promise.reject(this.fatal);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      const { timeoutMs } = options;
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          const answer = describeLastAnswer(this.latestError, this.address);
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

  getX509Svid(): X509Svid | undefined {
    return this.svid;
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
    this.watch.cancel();
    this.client.close();
    const error = this.closedError();
    for (const waiter of [...this.waiters]) this.settle(waiter, error);
  }
}
