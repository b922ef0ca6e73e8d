import type { Metadata, status } from "@grpc/grpc-js";

/** Test-only in-process Workload API server on a unix socket. */

export interface FakeSvid {
  spiffeId: string;
  chainDer: Buffer;
  keyDer: Buffer;
  bundleDer: Buffer;
  hint?: string;
}

export interface FakeX509Response {
  svids: FakeSvid[];
  /** Trust domain ID (spiffe://td) -> concatenated DER. */
  federatedBundles?: Record<string, Buffer>;
}

export interface FakeCall {
  method: "FetchX509SVID" | "FetchX509Bundles";
  metadata: Metadata;
}

export class FakeWorkloadApi {
  /** Listens on a fresh unix socket (under os.tmpdir() unless `socketPath` is given). */
  static async start(_options?: { socketPath?: string }): Promise<FakeWorkloadApi> {
    throw new Error("TODO");
  }

  /** `unix:///...`: pass to the client as `address`. */
  get address(): string {
    throw new Error("TODO");
  }

  /** Every call received, in order, with its metadata. */
  get calls(): readonly FakeCall[] {
    throw new Error("TODO");
  }

  /** Sets the X.509 response and sends it on every open FetchX509SVID stream. */
  setX509(_response: FakeX509Response): void {
    throw new Error("TODO");
  }

  /** Sets the bundles (td ID -> DER) and sends them on every open FetchX509Bundles stream. */
  setBundles(_bundles: Record<string, Buffer>): void {
    throw new Error("TODO");
  }

  /** Sends raw, possibly malformed, X.509 responses (fields as in workload.proto). */
  sendRawX509(_response: Record<string, unknown>): void {
    throw new Error("TODO");
  }

  /**
   * Until cleared with `failWith(undefined)`: open streams end with this status and new
   * calls are answered with it (e.g. PERMISSION_DENIED while no entry matches).
   */
  failWith(_code: status | undefined, _message?: string): void {
    throw new Error("TODO");
  }

  /** Ends every open stream normally (as an agent restart would). */
  endStreams(): void {
    throw new Error("TODO");
  }

  stop(): Promise<void> {
    throw new Error("TODO");
  }
}
