import {
  Client,
  type ClientReadableStream,
  credentials,
  Metadata,
  type StatusObject,
  status,
} from "@grpc/grpc-js";
import type { X509BundleSet } from "../bundle/x509bundle.js";
import { messageOf } from "../internal/error-message.js";
import { type Logger, stderrLogger } from "../logger/logger.js";
import type { X509Svid } from "../x509svid/svid.js";
import { resolveEndpointAddress, type WorkloadApiAddress } from "./address.js";
import { describeAgentProblem } from "./agent-problem.js";
import { Backoff } from "./backoff.js";
import { WorkloadApiError } from "./errors.js";
import {
  SECURITY_HEADER,
  SECURITY_HEADER_VALUE,
  toRawX509BundlesResponse,
  toRawX509SvidResponse,
  type WorkloadApiMethod,
  workloadApiMethod,
} from "./proto.js";
import { parseX509Bundles, parseX509Context } from "./responses.js";

/** What one FetchX509SVID response carries, parsed. */
export interface X509Context {
  /** All SVIDs, in the agent's order; the first is the default identity. Never empty. */
  svids: readonly X509Svid[];
  /** The SVIDs' own trust domain bundle plus every federated bundle. */
  bundles: X509BundleSet;
}

/** How long to wait between attempts: doubling with jitter from `initialMs` up to `maxMs`. */
export interface BackoffOptions {
  /** First delay, ms (default 500). */
  initialMs?: number;
  /** Cap, ms (default 5_000: about one SPIRE agent sync, see DEFAULT_MAX_BACKOFF_MS). */
  maxMs?: number;
}

/** Where the agent is, how to retry it, and where to log. */
export interface WorkloadApiClientOptions {
  /** `unix:///path` or `tcp://ip:port`, as text or parsed; default SPIFFE_ENDPOINT_SOCKET. */
  address?: string | WorkloadApiAddress;
  /** Retry delays (default 500 ms doubling up to 5 s). */
  backoff?: BackoffOptions;
  /** Default: warnings and errors to stderr, nothing else. */
  logger?: Logger;
}

/** Receives a watch's updates and failures. */
export interface Watcher<T> {
  /** Each parsed response. */
  onUpdate(value: T): void;
  /** Each failed attempt (before the retry), or the final error when it will not retry. */
  onError(error: WorkloadApiError, willRetry: boolean): void;
}

/** A streaming watch that reconnects by itself until cancelled. */
export interface Watch {
  /** Ends the stream and its retries; no callback is made afterwards. */
  cancel(): void;
}

/** The status name for a gRPC code, e.g. 7 -> "PERMISSION_DENIED". */
function statusName(code: number): string {
  return status[code] ?? `STATUS_${code}`;
}

/** Turns a gRPC status into an error whose message says what it means for the user. */
export function workloadApiErrorFromStatus(
  result: Pick<StatusObject, "code" | "details">,
  address: WorkloadApiAddress,
): WorkloadApiError {
  const name = statusName(result.code);
  const said = result.details ? ` [${name}: ${result.details}]` : ` [${name}]`;
  let meaning: string;
  switch (result.code) {
    case status.PERMISSION_DENIED:
      meaning = describeAgentProblem("no-entry", address);
      break;
    case status.UNAVAILABLE:
      meaning = `cannot reach the SPIRE Agent at ${address}: is it running and is the socket path right?`;
      break;
    case status.INVALID_ARGUMENT:
      meaning = `the Workload API at ${address} rejected the request as invalid, so it will not be retried (a client bug, or something dropped the ${SECURITY_HEADER} header)`;
      break;
    default:
      meaning = `the Workload API call to ${address} failed`;
  }
  return new WorkloadApiError(name, result.code, `${meaning}${said}`);
}

/**
 * Which failures end a watch. INVALID_ARGUMENT is final (the spec says so: the request
 * itself is wrong and repeating it cannot help). Every other code is retried with
 * backoff: UNAVAILABLE and PERMISSION_DENIED by the spec; the rest (UNKNOWN, INTERNAL,
 * UNIMPLEMENTED, a CANCELLED we did not ask for...) because an agent restart or upgrade
 * can clear them, and the capped backoff keeps retries cheap while they last.
 */
function isRetryable(code: number): boolean {
  return code !== status.INVALID_ARGUMENT;
}

function securityMetadata(): Metadata {
  const metadata = new Metadata();
  metadata.set(SECURITY_HEADER, SECURITY_HEADER_VALUE);
  return metadata;
}

type Parser<T> = (message: unknown) => T;

/** Internal: what a stream needs from its client. */
interface StreamOwner {
  readonly address: WorkloadApiAddress;
  readonly logger: Logger;
  open(method: WorkloadApiMethod): ClientReadableStream<unknown>;
  forget(stream: Cancellable): void;
}

interface Cancellable {
  cancel(): void;
}

/**
 * Calls `handle` once the call has ended AND every message it carried has been
 * delivered: grpc-js reports the status as soon as it arrives, which can be before
 * buffered messages reach the 'data' handler.
 */
function onCallEnd(call: ClientReadableStream<unknown>, handle: (result: StatusObject) => void) {
  call.on("error", () => {
    // Reported through 'status' below; without a listener the 'error' event would throw.
  });
  call.on("status", (result: StatusObject) => {
    if (call.readableEnded) handle(result);
    else call.once("end", () => handle(result));
  });
}

/** One watch: a stream that is reopened, after a backoff delay, whenever it ends. */
class ReconnectingWatch<T> implements Watch {
  private call: ClientReadableStream<unknown> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private cancelled = false;

  constructor(
    private readonly owner: StreamOwner,
    private readonly method: WorkloadApiMethod,
    private readonly parse: Parser<T>,
    private readonly watcher: Watcher<T>,
    private readonly backoff: Backoff,
  ) {}

  start(): void {
    this.timer = undefined;
    if (this.cancelled) return;
    const call = this.owner.open(this.method);
    this.call = call;
    let delivered = false;
    call.on("data", (message: unknown) => {
      if (this.cancelled) return;
      const value = this.tryParse(message);
      if (value === undefined) return;
      delivered = true;
      this.backoff.reset();
      this.notify(() => this.watcher.onUpdate(value));
    });
    onCallEnd(call, (result) => {
      if (this.cancelled || this.call !== call) return;
      this.call = undefined;
      this.ended(result, delivered);
    });
  }

  private tryParse(message: unknown): T | undefined {
    try {
      return this.parse(message);
    } catch (error) {
      const reason = messageOf(error);
      this.owner.logger.warn(
        { address: this.owner.address, method: this.method, reason },
        "discarding a malformed Workload API response; the stream stays open",
      );
      return undefined;
    }
  }

  /** `delivered`: the call had sent at least one usable response before it ended. */
  private ended(result: StatusObject, delivered: boolean): void {
    const { logger, address } = this.owner;
    if (result.code === status.OK) {
      const delayMs = this.scheduleRetry();
      logger.info({ address, method: this.method, delayMs }, "the agent ended the stream");
      return;
    }
    const error = workloadApiErrorFromStatus(result, address);
    if (!isRetryable(result.code)) {
      logger.error({ address, method: this.method, code: error.code }, error.message);
      this.finish();
      this.notify(() => this.watcher.onError(error, false));
      return;
    }
    // A refusal that ends a stream which was serving is re-checked soon: it may be the
    // agent's moment of renewing its own SVID, and the watcher wants to know which.
    const recheck = delivered && result.code === status.PERMISSION_DENIED;
    const delayMs = this.scheduleRetry(recheck ? this.backoff.recheck() : undefined);
    logger.warn({ address, method: this.method, code: error.code, delayMs }, error.message);
    this.notify(() => this.watcher.onError(error, true));
  }

  private scheduleRetry(delayMs = this.backoff.next()): number {
    this.timer = setTimeout(() => this.start(), delayMs);
    return delayMs;
  }

  /** A throwing watcher must not break the stream (or crash inside a gRPC callback). */
  private notify(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.owner.logger.error(
        { method: this.method, reason: messageOf(error) },
        "a Workload API watcher threw",
      );
    }
  }

  private finish(): void {
    this.cancelled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.owner.forget(this);
  }

  cancel(): void {
    if (this.cancelled) return;
    this.finish();
    const call = this.call;
    this.call = undefined;
    call?.cancel();
  }
}

/**
 * Workload API client over gRPC. Every call carries `workload.spiffe.io: true`; watches
 * reconnect with capped exponential backoff and jitter on UNAVAILABLE, PERMISSION_DENIED
 * and stream end (and on other codes except INVALID_ARGUMENT, see isRetryable);
 * INVALID_ARGUMENT ends the watch. A stream that had delivered responses and ends with
 * PERMISSION_DENIED is re-asked after Backoff#recheck (500-1000 ms by default). Responses whose mandatory fields are empty or
 * unparsable are discarded (logged at warn) and the stream is kept.
 */
export class WorkloadApiClient {
  /** The address in use; prints as written ("waiting on unix:///tmp/agent.sock"). */
  readonly address: WorkloadApiAddress;

  private readonly channel: Client;
  private readonly backoffOptions: BackoffOptions;
  private readonly logger: Logger;
  private readonly streams = new Set<Cancellable>();
  private closed = false;

  constructor(options: WorkloadApiClientOptions = {}) {
    this.address = resolveEndpointAddress(options.address);
    this.logger = options.logger ?? stderrLogger;
    this.backoffOptions = { ...options.backoff };
    const backoff = new Backoff(this.backoffOptions); // validates the options now
    this.channel = new Client(this.address.grpcTarget, credentials.createInsecure(), {
      // grpc-js backs off reconnecting the socket too (up to 2 minutes by default);
      // keep it within our own bounds so a restarted agent is found again quickly.
      "grpc.initial_reconnect_backoff_ms": backoff.initialMs,
      "grpc.max_reconnect_backoff_ms": backoff.maxMs,
    });
  }

  private owner(): StreamOwner {
    return {
      address: this.address,
      logger: this.logger,
      open: (method) => this.open(method),
      forget: (stream) => this.streams.delete(stream),
    };
  }

  private open(method: WorkloadApiMethod): ClientReadableStream<unknown> {
    const definition = workloadApiMethod(method);
    return this.channel.makeServerStreamRequest<object, unknown>(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      {},
      securityMetadata(),
    );
  }

  private skipReporter(method: WorkloadApiMethod) {
    return (details: object, message: string) =>
      this.logger.warn({ ...details, address: this.address, method }, message);
  }

  private parseContext: Parser<X509Context> = (message) =>
    parseX509Context(toRawX509SvidResponse(message), this.skipReporter("FetchX509SVID"));

  private parseBundles: Parser<X509BundleSet> = (message) =>
    parseX509Bundles(toRawX509BundlesResponse(message), this.skipReporter("FetchX509Bundles"));

  private closedError(): WorkloadApiError {
    return new WorkloadApiError(
      "CLIENT_CLOSED",
      status.CANCELLED,
      `the Workload API client for ${this.address} is closed`,
    );
  }

  private watch<T>(method: WorkloadApiMethod, parse: Parser<T>, watcher: Watcher<T>): Watch {
    if (this.closed) throw this.closedError();
    const watch = new ReconnectingWatch(
      this.owner(),
      method,
      parse,
      watcher,
      new Backoff(this.backoffOptions),
    );
    this.streams.add(watch);
    watch.start();
    return watch;
  }

  /** Streams FetchX509SVID: every SVID update, reconnecting until cancelled. */
  watchX509Context(watcher: Watcher<X509Context>): Watch {
    return this.watch("FetchX509SVID", this.parseContext, watcher);
  }

  /** Streams FetchX509Bundles: every bundle update, reconnecting until cancelled. */
  watchX509Bundles(watcher: Watcher<X509BundleSet>): Watch {
    return this.watch("FetchX509Bundles", this.parseBundles, watcher);
  }

  /** First valid response of one stream, without retries; malformed ones are skipped. */
  private fetchOnce<T>(method: WorkloadApiMethod, parse: Parser<T>): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise<T>((resolve, reject) => {
      const call = this.open(method);
      let settled = false;
      const stream: Cancellable = {
        cancel: () => {
          settle();
          call.cancel();
          reject(
            new WorkloadApiError(
              "CLIENT_CLOSED",
              status.CANCELLED,
              `the Workload API client for ${this.address} was closed during ${method}`,
            ),
          );
        },
      };
      const settle = () => {
        settled = true;
        this.streams.delete(stream);
      };
      this.streams.add(stream);
      call.on("data", (message: unknown) => {
        if (settled) return;
        try {
          const value = parse(message);
          settle();
          call.cancel();
          resolve(value);
        } catch (error) {
          const reason = messageOf(error);
          this.logger.warn(
            { address: this.address, method, reason },
            "discarding a malformed Workload API response",
          );
        }
      });
      onCallEnd(call, (result) => {
        if (settled) return;
        settle();
        reject(
          result.code === status.OK
            ? new WorkloadApiError(
                "STREAM_ENDED",
                status.OK,
                `the Workload API at ${this.address} ended ${method} without a usable response`,
              )
            : workloadApiErrorFromStatus(result, this.address),
        );
      });
    });
  }

  /** One-shot: the first valid X509Context, or the first error. */
  fetchX509Context(): Promise<X509Context> {
    return this.fetchOnce("FetchX509SVID", this.parseContext);
  }

  /** One-shot: the first valid bundle set, or the first error. */
  fetchX509Bundles(): Promise<X509BundleSet> {
    return this.fetchOnce("FetchX509Bundles", this.parseBundles);
  }

  /** Cancels every watch and pending fetch and closes the channel. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const stream of [...this.streams]) stream.cancel();
    this.streams.clear();
    this.channel.close();
  }
}
