import { EventEmitter } from "node:events";
import type { X509Bundle, X509BundleSet, X509BundleSource } from "../bundle.js";
import { SpiffeError } from "../errors.js";
import type { TrustDomain } from "../spiffeid.js";
import type { X509Svid, X509SvidSource } from "../x509svid.js";
import type { WorkloadApiClientOptions } from "./client.js";

export class X509SourceError extends SpiffeError {}

export interface X509SourceOptions extends WorkloadApiClientOptions {
  /** Picks the SVID to serve; default the first (the default identity). */
  pickSvid?: (svids: readonly X509Svid[]) => X509Svid;
}

export interface X509SourceEvents {
  /** A new SVID and/or bundle set is in use. */
  update: [];
  /** A Workload API error; the source keeps retrying unless it is closed. */
  error: [Error];
}

/**
 * The workload's current X.509-SVID and bundles, kept up to date from the Workload API
 * stream. Serves as both X509SvidSource and X509BundleSource for the TLS helpers.
 * After PERMISSION_DENIED on an established stream, the SVID is withdrawn
 * (getX509Svid() returns undefined) until the agent issues one again.
 */
export class X509Source
  extends EventEmitter<X509SourceEvents>
  implements X509SvidSource, X509BundleSource
{
  /** The Workload API address in use. */
  readonly address: string;

  constructor(_options: X509SourceOptions = {}) {
    super();
    throw new Error("TODO");
  }

  /**
   * Resolves once the first SVID has arrived. With `timeoutMs`, rejects with an
   * X509SourceError (code "timeout") whose message says what the agent last answered,
   * e.g. that no registration entry matches this workload yet.
   */
  ready(_options: { timeoutMs?: number } = {}): Promise<void> {
    throw new Error("TODO");
  }

  getX509Svid(): X509Svid | undefined {
    throw new Error("TODO");
  }

  getX509BundleForTrustDomain(_trustDomain: TrustDomain): X509Bundle | undefined {
    throw new Error("TODO");
  }

  /** The current bundle set (empty before the first response). */
  getX509Bundles(): X509BundleSet {
    throw new Error("TODO");
  }

  /** The last error the agent answered with, if the stream is failing now. */
  get lastError(): Error | undefined {
    throw new Error("TODO");
  }

  /** Ends the stream and all timers; idempotent. */
  close(): void {
    throw new Error("TODO");
  }
}
