import type { X509Certificate } from "node:crypto";
import {
  authorizeID,
  type JwtSvid,
  mtlsConnector,
  SpiffeError,
  type SpiffeId,
  tlsConnector,
  type X509BundleSource,
  type X509SvidSource,
} from "spiffe-node";
import { Agent, type Dispatcher, request } from "undici";
import { parseQuotes, type Quote } from "./quote.js";
import { type IssuerView, issuerView } from "./trust.js";

/**
 * How a connection fails when the server closed it under a request (reset, closed,
 * broken pipe; undici's SocketError "other side closed"). A refused identity is a
 * SpiffeError, whose codes are not among these.
 */
const CLOSED_UNDER_REQUEST = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

/** A failed call to the quotes service; `message` is the short reason shown on the page. */
export class UpstreamError extends Error {
  override name = "UpstreamError";
}

/** Where the quotes are, who must serve them, and with which identity and trust. */
export interface QuotesClientOptions {
  url: URL;
  /** The only SPIFFE ID the quotes service may present. */
  quotesId: SpiffeId;
  svidSource: X509SvidSource;
  bundleSource: X509BundleSource;
  /** For the whole call: connect, TLS, headers and body (default 2000). */
  timeoutMs?: number;
  /** Larger responses are refused (default 256 KiB; eleven quotes are about 1.3 KB). */
  maxBytes?: number;
  /** Told why a request is sent a second time, on a new connection (for the log). */
  onRetry?: (reason: string) => void;
  /**
   * The JWT road: the token to send as `Authorization: Bearer`, the cached one (a
   * JwtSource refreshes it before it expires) or, with `fresh`, a new one from the agent.
   * The connection then authenticates the server only and presents no client certificate.
   */
  bearer?: (fresh: boolean) => Promise<JwtSvid>;
}

/**
 * Fetches quotes over SPIFFE mTLS through one long-lived undici Agent, so connections
 * (and their TLS handshakes) are kept alive and reused across page loads.
 *
 * A server may close an idle kept-alive connection just as a request goes out on it
 * (the quotes service does so when its trust bundles change). Such a request is sent
 * once more, on a new connection, if it went out on a connection opened before the call
 * and failed before the response's headers arrived: the GET is idempotent and the
 * server never answered it. Never after the response started, and never when the call
 * opened a connection itself (a server refusing our identity closes that one). The
 * time limit covers both attempts.
 */
export class QuotesClient {
  readonly url: URL;
  #agent: Agent;
  readonly #createAgent: () => Agent;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #onRetry: (reason: string) => void;
  #verifiedPeer: SpiffeId | undefined;
  #peerIssuer: IssuerView | undefined;
  #handshakes = 0;
  /** Connections this client began to open (each one a call of the connector). */
  #connectAttempts = 0;
  #retries = 0;
  readonly #bearer: ((fresh: boolean) => Promise<JwtSvid>) | undefined;
  #lastToken: JwtSvid | undefined;

  constructor(options: QuotesClientOptions) {
    this.url = options.url;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#maxBytes = options.maxBytes ?? 256 * 1024;
    this.#onRetry = options.onRetry ?? (() => {});
    this.#bearer = options.bearer;
    const serverCheck = {
      bundleSource: options.bundleSource,
      authorizer: authorizeID(options.quotesId),
      connectTimeoutMs: this.#timeoutMs,
      onPeerVerified: (peerId: SpiffeId, chain: readonly X509Certificate[]) => {
        this.#verifiedPeer = peerId;
        this.#peerIssuer = issuerView(peerId.trustDomain, chain);
        this.#handshakes += 1;
      },
    };
    const connect =
      this.#bearer === undefined
        ? mtlsConnector({ ...serverCheck, svidSource: options.svidSource })
        : tlsConnector(serverCheck);
    this.#createAgent = () =>
      new Agent({
        // The page reloads every second: keep the connection for longer than that.
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        connections: 8,
        connect: (connectOptions, callback) => {
          this.#connectAttempts += 1;
          connect(connectOptions, callback);
        },
      });
    this.#agent = this.#createAgent();
  }

  /**
   * Starts over with new connections, so the server is authenticated again under the
   * trust now in force (call when bundles change). Calls in flight finish on the old ones.
   */
  dropConnections(): void {
    const old = this.#agent;
    this.#agent = this.#createAgent();
    old.close().catch(() => {});
  }

  /** The quotes service's ID as verified on the most recent new connection. */
  get verifiedPeer(): SpiffeId | undefined {
    return this.#verifiedPeer;
  }

  /** Which authority issued the certificate the quotes service presented on that connection. */
  get peerIssuer(): IssuerView | undefined {
    return this.#peerIssuer;
  }

  /** How many connections (each one TLS handshake) have authenticated the quotes service. */
  get handshakes(): number {
    return this.#handshakes;
  }

  /** The JWT-SVID sent with the latest request (JWT road only). */
  get lastToken(): JwtSvid | undefined {
    return this.#lastToken;
  }

  /** How many requests were sent a second time after a kept-alive connection closed under them. */
  get retries(): number {
    return this.#retries;
  }

  /** The quotes, or an UpstreamError saying in a few words what went wrong. */
  async fetchQuotes(): Promise<Quote[]> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    try {
      const body = await this.#fetchBody(controller.signal);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        throw new UpstreamError("the response is not valid JSON");
      }
      try {
        return parseQuotes(json);
      } catch (error) {
        throw new UpstreamError(`unexpected response: ${(error as Error).message}`);
      }
    } catch (error) {
      if (error instanceof UpstreamError) throw error;
      if (controller.signal.aborted) {
        throw new UpstreamError(`no answer within ${this.#timeoutMs / 1000} s`, { cause: error });
      }
      throw new UpstreamError(describeFailure(error, this.url), { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The response's status and headers, sent a second time if the rules above allow. */
  async #send(signal: AbortSignal, authorization?: string): Promise<Dispatcher.ResponseData> {
    const agent = this.#agent;
    const connectAttempts = this.#connectAttempts;
    try {
      return await this.#request(agent, signal, authorization);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const onKeptAliveConnection = this.#connectAttempts === connectAttempts;
      if (signal.aborted || !onKeptAliveConnection || !CLOSED_UNDER_REQUEST.has(String(code))) {
        throw error;
      }
      this.#retries += 1;
      this.#onRetry(describeFailure(error, this.url));
      // The server is likely closing its other idle connections too: start afresh, so
      // the second attempt (and the next calls) get a new connection.
      if (this.#agent === agent) this.dropConnections();
      return await this.#request(this.#agent, signal, authorization);
    }
  }

  #request(
    agent: Agent,
    signal: AbortSignal,
    authorization: string | undefined,
  ): Promise<Dispatcher.ResponseData> {
    return request(this.url, {
      dispatcher: agent,
      method: "GET",
      headers:
        authorization === undefined
          ? { accept: "application/json" }
          : { accept: "application/json", authorization },
      signal,
    });
  }

  /** `Bearer <token>` on the JWT road (undefined on the mTLS road). */
  async #authorization(fresh: boolean): Promise<string | undefined> {
    if (this.#bearer === undefined) return undefined;
    try {
      this.#lastToken = await this.#bearer(fresh);
    } catch (error) {
      throw new UpstreamError(`no JWT-SVID to send: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return `Bearer ${this.#lastToken.token}`;
  }

  async #fetchBody(signal: AbortSignal): Promise<string> {
    let response = await this.#send(signal, await this.#authorization(false));
    if (response.statusCode === 401 && this.#bearer !== undefined) {
      // The cached token was refused: its key may have been revoked, and the quotes
      // service heard of it before our own bundle did. Once more with a fresh token.
      await response.body.dump({ limit: this.#maxBytes }).catch(() => {});
      this.#onRetry(
        "the quotes service refused the cached JWT-SVID (401): sent again with a fresh one",
      );
      response = await this.#send(signal, await this.#authorization(true));
    }
    if (response.statusCode !== 200) {
      // Read (a bounded amount of) the body so the connection can be reused.
      await response.body.dump({ limit: this.#maxBytes }).catch(() => {});
      throw new UpstreamError(`HTTP status ${response.statusCode}`);
    }
    const declared = Number(response.headers["content-length"]);
    if (declared > this.#maxBytes) {
      response.body.destroy();
      throw new UpstreamError(`response too large (over ${this.#maxBytes} bytes)`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > this.#maxBytes) {
        response.body.destroy();
        throw new UpstreamError(`response too large (over ${this.#maxBytes} bytes)`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  /** Closes the kept-alive connections. */
  async close(): Promise<void> {
    await this.#agent.destroy();
  }
}

/** A few words on why a call failed, for the page and the log. */
function describeFailure(error: unknown, url: URL): string {
  if (error instanceof SpiffeError) return `mTLS refused: ${error.message}`;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case "ECONNREFUSED":
      return `connection refused by ${url.host}`;
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
    case "EPIPE":
      return `connection to ${url.host} closed unexpectedly (${message})`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot resolve host ${url.hostname}`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `cannot reach ${url.host}`;
    case "UND_ERR_CONNECT_TIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return `timed out (${message})`;
    default:
      if (typeof code === "string" && /SSL|TLS|CERT/i.test(code)) return `TLS failure: ${message}`;
      return message;
  }
}
