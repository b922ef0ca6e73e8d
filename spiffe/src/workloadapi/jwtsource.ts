import { EventEmitter } from "node:events";
import { type JwtBundle, JwtBundleSet, type JwtBundleSource } from "../bundle/jwtbundle.js";
import { SpiffeError } from "../errors/spiffe-error.js";
import type { JwtSvidSource } from "../jwtsvid/source.js";
import type { JwtSvid } from "../jwtsvid/svid.js";
import type { TrustDomain } from "../spiffeid/spiffeid.js";
import type { WorkloadApiAddress } from "./address.js";
import { Backoff } from "./backoff.js";
import {
  type JwtSvidParams,
  type Watch,
  WorkloadApiClient,
  type WorkloadApiClientOptions,
} from "./client.js";
import { WorkloadApiError } from "./errors.js";
import { DEFAULT_PERMISSION_DENIED_GRACE_MS } from "./x509source.js";

/**
 * Why a JwtSource cannot serve: "timeout" (ready() or a token fetch waited too long),
 * "failed" (an answer that will not be retried, e.g. INVALID_ARGUMENT), "closed", or
 * "invalid-option".
 */
export class JwtSourceError extends SpiffeError {}

const MAX_PERMISSION_DENIED_GRACE_MS = 5_000;
/** No refresh sooner than this after a fetch, whatever the agent sends. */
const MIN_REFRESH_MS = 250;

/** Options of JwtSource. */
export interface JwtSourceOptions extends WorkloadApiClientOptions {
  /**
   * How long the JWT bundles are still served after PERMISSION_DENIED ends the bundle
   * stream, while the source asks again (default 2000 ms, at most 5000, 0 = at once); as
   * for X509Source.
   */
  permissionDeniedGraceMs?: number;
  /**
   * How long fetchJwtSvid keeps retrying (on the codes the X.509 side retries) before it
   * rejects, ms (default 10_000).
   */
  fetchTimeoutMs?: number;
}

/** Events of JwtSource. */
export interface JwtSourceEvents {
  /** A trust domain's JWT bundle arrived, went, or its keys changed. */
  bundlesChanged: [bundles: JwtBundleSet, previous: JwtBundleSet];
  /** A token for these parameters was fetched (the first one, or a refresh). */
  svidFetched: [svid: JwtSvid, audience: readonly string[]];
  /** A Workload API error; the source keeps retrying unless it is closed. */
  error: [Error];
}

interface CacheEntry {
  params: { audience: readonly string[]; spiffeId?: string };
  svids: readonly JwtSvid[] | undefined;
  /** The fetch in progress, if any (callers with no usable token wait on it). */
  pending: Promise<readonly JwtSvid[]> | undefined;
  timer: NodeJS.Timeout | undefined;
  backoff: Backoff;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
}

function graceFrom(options: JwtSourceOptions): number {
  const graceMs = options.permissionDeniedGraceMs ?? DEFAULT_PERMISSION_DENIED_GRACE_MS;
  if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > MAX_PERMISSION_DENIED_GRACE_MS) {
    throw new JwtSourceError(
      "invalid-option",
      `permissionDeniedGraceMs must be a number of milliseconds from 0 to ${MAX_PERMISSION_DENIED_GRACE_MS}, not ${graceMs}`,
    );
  }
  return graceMs;
}

/**
 * When to fetch again: halfway through what is left of the shortest-lived token, as SPIRE
 * renews X.509-SVIDs halfway. Counted from the fetch, not from `iat` (whole seconds, and
 * possibly from a clock a little apart), so a refresh never comes back at once.
 */
function refreshDelay(svids: readonly JwtSvid[], nowMs: number): number {
  let remaining = Number.POSITIVE_INFINITY;
  for (const svid of svids) remaining = Math.min(remaining, svid.expiresAt.getTime() - nowMs);
  return Math.max(MIN_REFRESH_MS, remaining / 2);
}

function usable(svids: readonly JwtSvid[] | undefined, nowMs: number): svids is readonly JwtSvid[] {
  return svids?.every((svid) => nowMs < svid.expiresAt.getTime()) === true;
}

/** One cache entry per set of audiences (in any order) and SPIFFE ID. */
function cacheKey(params: JwtSvidParams): string {
  const audience = typeof params.audience === "string" ? [params.audience] : [...params.audience];
  return JSON.stringify([audience.sort(), params.spiffeId?.toString() ?? ""]);
}

function isRetryable(error: unknown): boolean {
  return !(error instanceof WorkloadApiError) || error.code !== "INVALID_ARGUMENT";
}

/**
 * The workload's JWT side of the Workload API: the JWT bundles of its own and every
 * federated trust domain, streamed and kept current (a JwtBundleSource for
 * parseAndValidateJwtSvid), and its JWT-SVIDs, one cached set per audience. A token is
 * fetched on the first request for an audience and again halfway through its life, in
 * the background, so a request never waits for a refresh and no call fetches a token of
 * its own. A failed refresh is retried with the client's backoff while the cached token
 * is still valid; PERMISSION_DENIED or INVALID_ARGUMENT drops it (the agent no longer
 * vouches for this workload), and an expired token is never handed out. A token whose
 * key leaves its trust domain's bundle (a revoked JWT authority) is dropped and fetched
 * again at once.
 *
 * "error" is only emitted when someone listens for it (as for X509Source).
 */
export class JwtSource
  extends EventEmitter<JwtSourceEvents>
  implements JwtBundleSource, JwtSvidSource
{
  /** The Workload API address in use. */
  readonly address: WorkloadApiAddress;

  private readonly client: WorkloadApiClient;
  private readonly graceMs: number;
  private readonly fetchTimeoutMs: number;
  private readonly backoffOptions: WorkloadApiClientOptions["backoff"];
  private readonly watch: Watch;
  private bundles = new JwtBundleSet();
  private readonly cache = new Map<string, CacheEntry>();
  private readonly waiters = new Set<Waiter>();
  private graceTimer: NodeJS.Timeout | undefined;
  private latestError: WorkloadApiError | undefined;
  private fatal: JwtSourceError | undefined;
  private closed = false;

  constructor(options: JwtSourceOptions = {}) {
    super();
    this.graceMs = graceFrom(options);
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 10_000;
    this.backoffOptions = options.backoff;
    this.client = new WorkloadApiClient(options);
    this.address = this.client.address;
    this.watch = this.client.watchJwtBundles({
      onUpdate: (bundles) => {
        this.latestError = undefined;
        this.endGrace();
        this.replaceBundles(bundles);
        for (const waiter of [...this.waiters]) this.settle(waiter, undefined);
      },
      onError: (error, willRetry) => this.bundleStreamFailed(error, willRetry),
    });
  }

  private replaceBundles(bundles: JwtBundleSet): void {
    const previous = this.bundles;
    this.bundles = bundles;
    if (previous.equals(bundles)) return;
    this.dropUnverifiable(bundles);
    this.emit("bundlesChanged", bundles, previous);
  }

  /**
   * A cached token whose key has left its own trust domain's bundle (the authority was
   * revoked) would be refused by every validator from now on: drop it, so the next call
   * fetches one signed by a key still trusted, and refetch it in the background.
   */
  private dropUnverifiable(bundles: JwtBundleSet): void {
    if (bundles.size === 0) return; // withdrawn bundles say nothing about the keys
    for (const entry of this.cache.values()) {
      const stale = entry.svids?.some((svid) => {
        const bundle = bundles.getJwtBundleForTrustDomain(svid.id.trustDomain);
        return (
          bundle !== undefined &&
          svid.keyId !== undefined &&
          bundle.findJwtAuthority(svid.keyId) === undefined
        );
      });
      if (!stale) continue;
      entry.svids = undefined;
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.timer = undefined;
      this.refresh(entry);
    }
  }

  private endGrace(): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }

  private bundleStreamFailed(error: WorkloadApiError, willRetry: boolean): void {
    this.latestError = error;
    if (error.code === "PERMISSION_DENIED") {
      // A refusal may be the agent's moment of renewing its own SVID: withdraw only when
      // it is confirmed (a second refusal) or the grace period passes without bundles.
      const withdraw = () => {
        this.endGrace();
        this.replaceBundles(new JwtBundleSet());
      };
      if (this.graceTimer !== undefined || this.bundles.size === 0 || this.graceMs === 0)
        withdraw();
      else {
        this.graceTimer = setTimeout(withdraw, this.graceMs);
        this.graceTimer.unref();
      }
    }
    if (!willRetry) {
      this.fatal = new JwtSourceError(
        "failed",
        `the JwtSource for ${this.address} stopped: ${error.message}`,
        {
          cause: error,
        },
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

  private closedError(): JwtSourceError {
    return new JwtSourceError("closed", `the JwtSource for ${this.address} is closed`);
  }

  /**
   * Resolves once the JWT bundles have arrived. With `timeoutMs`, rejects with a
   * JwtSourceError ("timeout") that says what the agent last answered; rejects at once
   * ("failed") after an answer that will not be retried, and ("closed") on close().
   */
  ready(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.bundles.size > 0) return Promise.resolve();
    if (this.fatal !== undefined) return Promise.reject(this.fatal);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      if (options.timeoutMs !== undefined) {
        const { timeoutMs } = options;
        waiter.timer = setTimeout(() => {
          const answer =
            this.latestError?.message ?? `no usable answer from the agent at ${this.address}`;
          this.settle(
            waiter,
            new JwtSourceError(
              "timeout",
              `no JWT bundles from the Workload API within ${timeoutMs} ms: ${answer}`,
              {
                cause: this.latestError,
              },
            ),
          );
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle | undefined {
    return this.bundles.getJwtBundleForTrustDomain(trustDomain);
  }

  /** The current JWT bundle set (empty before the first response). */
  getJwtBundles(): JwtBundleSet {
    return this.bundles;
  }

  /**
   * A JWT-SVID for `audience`: the default identity's, or `spiffeId`'s. Served from the
   * cache while it is valid; see fetchJwtSvids.
   */
  async fetchJwtSvid(params: JwtSvidParams): Promise<JwtSvid> {
    const svids = await this.fetchJwtSvids(params);
    return svids[0] as JwtSvid;
  }

  /**
   * JWT-SVIDs for `audience`, one per identity (or `spiffeId`'s only), from the cache
   * while they are valid. Without a valid cached set it asks the agent, retrying as the
   * X.509 side does for up to `fetchTimeoutMs`, and rejects with a JwtSourceError
   * ("timeout", the agent's last answer as cause; "failed" on INVALID_ARGUMENT; "closed").
   */
  async fetchJwtSvids(params: JwtSvidParams): Promise<readonly JwtSvid[]> {
    if (this.closed) throw this.closedError();
    const audience = (
      typeof params.audience === "string" ? [params.audience] : [...params.audience]
    ).sort();
    const spiffeId = params.spiffeId?.toString();
    const key = cacheKey(params);
    let entry = this.cache.get(key);
    if (entry === undefined) {
      entry = {
        params: { audience, ...(spiffeId === undefined ? {} : { spiffeId }) },
        svids: undefined,
        pending: undefined,
        timer: undefined,
        backoff: new Backoff(this.backoffOptions),
      };
      this.cache.set(key, entry);
    }
    if (usable(entry.svids, Date.now())) return entry.svids;
    entry.pending ??= this.fetchWithRetry(entry);
    return entry.pending;
  }

  /**
   * A fresh JWT-SVID for these parameters, fetched from the agent now in place of the
   * cached one: for when a server refused the cached token (its key may have been
   * revoked before this source's bundles said so). Calls made together share one fetch.
   */
  async refetchJwtSvid(params: JwtSvidParams): Promise<JwtSvid> {
    if (this.closed) throw this.closedError();
    const entry = this.cache.get(cacheKey(params));
    if (entry !== undefined && entry.pending === undefined) {
      entry.svids = undefined;
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    return this.fetchJwtSvid(params);
  }

  /** Asks until the agent answers, a final error, or fetchTimeoutMs. */
  private async fetchWithRetry(entry: CacheEntry): Promise<readonly JwtSvid[]> {
    const deadline = Date.now() + this.fetchTimeoutMs;
    try {
      for (;;) {
        try {
          return this.store(entry, await this.client.fetchJwtSvids(entry.params));
        } catch (error) {
          if (this.closed) throw this.closedError();
          if (!isRetryable(error)) {
            throw new JwtSourceError(
              "failed",
              `FetchJWTSVID at ${this.address} failed: ${(error as Error).message}`,
              {
                cause: error,
              },
            );
          }
          if (error instanceof WorkloadApiError && this.listenerCount("error") > 0)
            this.emit("error", error);
          const delayMs = entry.backoff.next();
          if (Date.now() + delayMs >= deadline) {
            throw new JwtSourceError(
              "timeout",
              `no JWT-SVID for ${JSON.stringify(entry.params.audience)} within ${this.fetchTimeoutMs} ms: ${(error as Error).message}`,
              { cause: error },
            );
          }
          await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
      }
    } finally {
      entry.pending = undefined;
    }
  }

  private store(entry: CacheEntry, svids: readonly JwtSvid[]): readonly JwtSvid[] {
    if (this.closed) throw this.closedError();
    entry.svids = svids;
    entry.backoff.reset();
    this.schedule(entry, refreshDelay(svids, Date.now()));
    for (const svid of svids) this.emit("svidFetched", svid, entry.params.audience);
    return svids;
  }

  private schedule(entry: CacheEntry, delayMs: number): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = setTimeout(
      () => this.refresh(entry),
      Math.max(0, Math.min(delayMs, 2 ** 31 - 1)),
    );
    entry.timer.unref();
  }

  /** Background refresh; callers keep getting the cached token meanwhile. */
  private refresh(entry: CacheEntry): void {
    entry.timer = undefined;
    if (this.closed || entry.pending !== undefined) return;
    const attempt = this.client.fetchJwtSvids(entry.params).then(
      (svids) => this.store(entry, svids),
      (error: unknown) => {
        if (this.closed) throw this.closedError();
        const denied = error instanceof WorkloadApiError && error.code === "PERMISSION_DENIED";
        if (denied || !isRetryable(error)) {
          // The agent no longer vouches for this workload: the cached token must go.
          entry.svids = undefined;
        } else if (usable(entry.svids, Date.now())) {
          this.schedule(entry, entry.backoff.next());
        }
        if (error instanceof WorkloadApiError && this.listenerCount("error") > 0)
          this.emit("error", error);
        throw error;
      },
    );
    // Only callers without a usable token wait on a refresh; nobody else sees its failure.
    entry.pending = attempt.finally(() => {
      entry.pending = undefined;
    });
    entry.pending.catch(() => {});
  }

  /** The last error of the bundle stream, if it is failing now. */
  get lastError(): Error | undefined {
    return this.latestError;
  }

  /** Ends the stream, the refresh timers and the client; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endGrace();
    for (const entry of this.cache.values())
      if (entry.timer !== undefined) clearTimeout(entry.timer);
    this.cache.clear();
    this.watch.cancel();
    this.client.close();
    const error = this.closedError();
    for (const waiter of [...this.waiters]) this.settle(waiter, error);
  }
}
