import type { X509BundleSet } from "../bundle.js";
import { SpiffeError } from "../errors.js";
import type { X509Svid } from "../x509svid.js";

/** A gRPC failure from the Workload API, with the status code name (e.g. "PERMISSION_DENIED"). */
export class WorkloadApiError extends SpiffeError {
  /** gRPC numeric status code. */
  readonly grpcCode: number;

  constructor(code: string, grpcCode: number, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.grpcCode = grpcCode;
  }
}

/** What one FetchX509SVID response carries, parsed. */
export interface X509Context {
  /** All SVIDs, in the agent's order; the first is the default identity. Never empty. */
  svids: readonly X509Svid[];
  /** The SVIDs' own trust domain bundle plus every federated bundle. */
  bundles: X509BundleSet;
}

export interface BackoffOptions {
  /** First delay, ms (default 500). */
  initialMs?: number;
  /** Cap, ms (default 30_000). */
  maxMs?: number;
}

/** Minimal logger shape (pino-compatible), so the library does not require pino. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WorkloadApiClientOptions {
  /** `unix:///path` or `tcp://ip:port`; default SPIFFE_ENDPOINT_SOCKET. */
  address?: string;
  backoff?: BackoffOptions;
  logger?: Logger;
}

export interface Watcher<T> {
  onUpdate(value: T): void;
  /** Each failed attempt (before the retry), or the final error when it will not retry. */
  onError(error: WorkloadApiError, willRetry: boolean): void;
}

/** A streaming watch that reconnects by itself until cancelled. */
export interface Watch {
  cancel(): void;
}

/**
 * Workload API client over gRPC. Every call carries `workload.spiffe.io: true`; watches
 * reconnect with capped exponential backoff and jitter on UNAVAILABLE, PERMISSION_DENIED
 * and stream end; INVALID_ARGUMENT ends the watch. Responses whose mandatory fields are
 * empty or unparsable are discarded.
 */
export class WorkloadApiClient {
  /** The address in use, for messages ("waiting on unix:///tmp/agent.sock"). */
  readonly address: string;

  constructor(_options: WorkloadApiClientOptions = {}) {
    throw new Error("TODO");
  }

  watchX509Context(_watcher: Watcher<X509Context>): Watch {
    throw new Error("TODO");
  }

  watchX509Bundles(_watcher: Watcher<X509BundleSet>): Watch {
    throw new Error("TODO");
  }

  /** One-shot: the first valid X509Context, or the first error. */
  fetchX509Context(): Promise<X509Context> {
    throw new Error("TODO");
  }

  /** One-shot: the first valid bundle set, or the first error. */
  fetchX509Bundles(): Promise<X509BundleSet> {
    throw new Error("TODO");
  }

  /** Cancels every watch and closes the channel. */
  close(): void {
    throw new Error("TODO");
  }
}
