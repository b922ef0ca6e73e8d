import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Metadata,
  Server,
  ServerCredentials,
  type ServerWritableStream,
  status,
} from "@grpc/grpc-js";
import {
  SECURITY_HEADER,
  SECURITY_HEADER_VALUE,
  type WorkloadApiMethod,
  workloadApiService,
} from "../workloadapi/proto.js";

/** Test-only in-process Workload API server on a unix socket (or loopback TCP). */

/** One SVID as the fake sends it: the Workload API's raw fields. */
export interface FakeSvid {
  /** The `spiffe_id` field (sent as given, even when it does not match the certificate). */
  spiffeId: string;
  /** Concatenated DER chain, leaf first. */
  chainDer: Buffer;
  /** PKCS#8 DER private key. */
  keyDer: Buffer;
  /** Concatenated DER of its trust domain's bundle. */
  bundleDer: Buffer;
  /** The `hint` field (default ""). */
  hint?: string;
}

/** One FetchX509SVID response. */
export interface FakeX509Response {
  /** The SVIDs, the default identity first. */
  svids: FakeSvid[];
  /** Trust domain ID (spiffe://td) -> concatenated DER. */
  federatedBundles?: Record<string, Buffer>;
}

/** A call the fake received, recorded for assertions. */
export interface FakeCall {
  /** Which RPC. */
  method: WorkloadApiMethod;
  /** The gRPC metadata it carried (e.g. `workload.spiffe.io`). */
  metadata: Metadata;
  /** When it arrived (Date.now()). */
  at: number;
  /** The error status it was answered with; unset while it streams or after a normal end. */
  status?: status;
}

/** Where the fake listens and how strict it is. */
export interface FakeWorkloadApiOptions {
  /** Socket path; default a fresh one under os.tmpdir(). */
  socketPath?: string;
  /** Listen on 127.0.0.1 at a free port instead (address `tcp://127.0.0.1:<port>`). */
  tcp?: boolean;
  /**
   * Answer calls without `workload.spiffe.io: true` with INVALID_ARGUMENT "security
   * header missing from request", as a real agent does (default true).
   */
  requireSecurityHeader?: boolean;
}

type Stream = ServerWritableStream<unknown, unknown>;

function toWireX509(response: FakeX509Response): Record<string, unknown> {
  return {
    svids: response.svids.map((svid) => ({
      spiffe_id: svid.spiffeId,
      x509_svid: svid.chainDer,
      x509_svid_key: svid.keyDer,
      bundle: svid.bundleDer,
      hint: svid.hint ?? "",
    })),
    federated_bundles: response.federatedBundles ?? {},
  };
}

/**
 * An in-process Workload API for tests, on a unix socket or loopback TCP: streams the
 * SVIDs and bundles a test sets, fails as told, and records every call.
 */
export class FakeWorkloadApi {
  private readonly server: Server;
  private readonly socketPath: string;
  /** The TCP port when listening on loopback TCP. */
  private tcpPort: number | undefined;
  private readonly tempDir: string | undefined;
  private readonly requireSecurityHeader: boolean;
  private readonly received: FakeCall[] = [];
  private readonly open: Record<WorkloadApiMethod, Set<Stream>> = {
    FetchX509SVID: new Set(),
    FetchX509Bundles: new Set(),
  };
  private x509: Record<string, unknown> | undefined;
  private bundles: Record<string, unknown> | undefined;
  private failure: { code: status; details: string } | undefined;
  private failNextCalls: { count: number; code: status } | undefined;
  private readonly records = new WeakMap<Stream, FakeCall>();
  private cancelledCount = 0;
  private stopped = false;

  private constructor(
    server: Server,
    socketPath: string,
    tempDir: string | undefined,
    requireSecurityHeader: boolean,
  ) {
    this.server = server;
    this.socketPath = socketPath;
    this.tempDir = tempDir;
    this.requireSecurityHeader = requireSecurityHeader;
  }

  /**
   * Listens on a fresh unix socket (under os.tmpdir() unless `socketPath` is given), or
   * with `tcp` on a free loopback port.
   */
  static async start(options: FakeWorkloadApiOptions = {}): Promise<FakeWorkloadApi> {
    const tempDir =
      options.socketPath === undefined && !options.tcp
        ? await mkdtemp(join(tmpdir(), "fake-workload-api-"))
        : undefined;
    const socketPath = options.tcp
      ? ""
      : (options.socketPath ?? join(tempDir as string, "agent.sock"));
    const server = new Server();
    const fake = new FakeWorkloadApi(
      server,
      socketPath,
      tempDir,
      options.requireSecurityHeader ?? true,
    );
    server.addService(workloadApiService(), {
      FetchX509SVID: (call: Stream) => fake.accept("FetchX509SVID", call),
      FetchX509Bundles: (call: Stream) => fake.accept("FetchX509Bundles", call),
    });
    try {
      const target = options.tcp ? "127.0.0.1:0" : `unix://${socketPath}`;
      fake.tcpPort = await new Promise<number>((resolve, reject) => {
        server.bindAsync(target, ServerCredentials.createInsecure(), (error, port) =>
          error ? reject(error) : resolve(port),
        );
      });
      if (!options.tcp) fake.tcpPort = undefined;
    } catch (error) {
      server.forceShutdown();
      if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
      throw error;
    }
    return fake;
  }

  /** `unix:///...` or `tcp://127.0.0.1:<port>`: pass to the client as `address`. */
  get address(): string {
    if (this.tcpPort !== undefined) return `tcp://127.0.0.1:${this.tcpPort}`;
    return `unix://${this.socketPath}`;
  }

  /** Every call received, in order, with its metadata. */
  get calls(): readonly FakeCall[] {
    return this.received;
  }

  /** Streams currently open (not ended by the server, not cancelled by the client). */
  openStreamCount(method?: WorkloadApiMethod): number {
    if (method !== undefined) return this.open[method].size;
    return this.open.FetchX509SVID.size + this.open.FetchX509Bundles.size;
  }

  /** How many streams the client has cancelled so far. */
  get cancelledStreams(): number {
    return this.cancelledCount;
  }

  private accept(method: WorkloadApiMethod, call: Stream): void {
    const record: FakeCall = { method, metadata: call.metadata.clone(), at: Date.now() };
    this.received.push(record);
    this.records.set(call, record);
    const header = call.metadata.get(SECURITY_HEADER);
    if (
      this.requireSecurityHeader &&
      !(header.length === 1 && header[0] === SECURITY_HEADER_VALUE)
    ) {
      record.status = status.INVALID_ARGUMENT;
      call.emit("error", {
        code: status.INVALID_ARGUMENT,
        details: "security header missing from request",
      });
      return;
    }
    if (this.failNextCalls !== undefined && this.failNextCalls.count > 0) {
      this.failNextCalls.count -= 1;
      record.status = this.failNextCalls.code;
      call.emit("error", {
        code: this.failNextCalls.code,
        details: `fake agent answers ${status[this.failNextCalls.code]}`,
      });
      return;
    }
    if (this.failure !== undefined) {
      record.status = this.failure.code;
      call.emit("error", { ...this.failure });
      return;
    }
    const streams = this.open[method];
    streams.add(call);
    call.on("cancelled", () => {
      if (streams.delete(call)) this.cancelledCount += 1;
    });
    const current = method === "FetchX509SVID" ? this.x509 : this.bundles;
    if (current !== undefined) call.write(current);
  }

  /** Sets the X.509 response and sends it on every open FetchX509SVID stream. */
  setX509(response: FakeX509Response): void {
    this.x509 = toWireX509(response);
    for (const call of this.open.FetchX509SVID) call.write(this.x509);
  }

  /**
   * New FetchX509SVID calls get no response (the stream stays open, silent) until the
   * next setX509; open streams are left as they are.
   */
  withholdX509(): void {
    this.x509 = undefined;
  }

  /** Sets the bundles (td ID -> DER) and sends them on every open FetchX509Bundles stream. */
  setBundles(bundles: Record<string, Buffer>): void {
    this.bundles = { bundles };
    for (const call of this.open.FetchX509Bundles) call.write(this.bundles);
  }

  /** Sends raw, possibly malformed, X.509 responses (fields as in workload.proto). */
  sendRawX509(response: Record<string, unknown>): void {
    for (const call of this.open.FetchX509SVID) call.write(response);
  }

  /**
   * Until cleared with `failWith(undefined)`: open streams end with this status and new
   * calls are answered with it (e.g. PERMISSION_DENIED while no entry matches).
   */
  failWith(code: status | undefined, message?: string): void {
    if (code === undefined) {
      this.failure = undefined;
      return;
    }
    this.failure = { code, details: message ?? `fake agent answers ${status[code]}` };
    this.endStreamsWith(code, this.failure.details);
  }

  /**
   * Ends every open stream with this status once; later calls are answered as usual.
   * A SPIRE Agent does this with PERMISSION_DENIED for a moment while it renews its own
   * SVID (e.g. after its CA was tainted).
   */
  endStreamsWith(code: status, message?: string): void {
    const failure = { code, details: message ?? `fake agent answers ${status[code]}` };
    for (const streams of Object.values(this.open)) {
      for (const call of streams) {
        const record = this.records.get(call);
        if (record) record.status = code;
        call.emit("error", { ...failure });
      }
      streams.clear();
    }
  }

  /** The next `count` calls (any method) are answered with `code`; later ones as usual. */
  failNext(count: number, code: status): void {
    this.failNextCalls = { count, code };
  }

  /** Ends every open stream normally (as an agent restart would). */
  endStreams(): void {
    for (const streams of Object.values(this.open)) {
      for (const call of streams) call.end();
      streams.clear();
    }
  }

  /** Closes every stream and the server, and removes the socket (and its temp folder). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.endStreams();
    await new Promise<void>((resolve) => {
      // A client that keeps its connection open must not hold the test up.
      const force = setTimeout(() => this.server.forceShutdown(), 200);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    const leftover = this.tempDir ?? this.socketPath;
    if (leftover !== "") await rm(leftover, { recursive: true, force: true });
  }
}
