import type { ServerOptions as HttpServerOptions } from "node:http";
import type { Server as NetServer } from "node:net";
import type { TlsOptions } from "node:tls";
import { InvalidArgumentError, Option } from "commander";
import type { Logger } from "pino";

/**
 * How long a connection may stay open without doing anything useful, and how many may be
 * open at once. Each open mTLS connection holds 50-80 KB, most of it native (OpenSSL's
 * state and Node's TLS and HTTP objects), and glibc keeps most of it after the connection
 * closes, so these bound the service's memory (see the quotes service's README).
 */
export interface ConnectionLimits {
  /** A kept-alive connection with no request for this long is closed. */
  idleTimeoutMs: number;
  /** The TLS handshake, and each request's headers, must arrive within this. */
  handshakeTimeoutMs: number;
  /** Connections past this many are refused (closed at once, before any TLS). */
  maxConnections: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = {
  // Node's own default: long enough for a client that calls every second or so; a pooling
  // client sees it in the Keep-Alive header and stops reusing a connection before then.
  idleTimeoutMs: 5_000,
  // A handshake takes a few round trips even across continents; Node's default is 120 s,
  // which lets a client that never finishes it hold a connection for two minutes.
  handshakeTimeoutMs: 10_000,
  // 20-30 MB of connections at most (the quotes service's README has the numbers), and
  // far more than the webapp's pool of 8.
  maxConnections: 256,
};

/** How often Node looks for requests past their headers timeout (its default is 30 s). */
const CHECK_INTERVAL_MS = 1_000;

/** Server options carrying `limits`'s timeouts, for `https.createServer`. */
export function connectionLimitOptions(
  limits: ConnectionLimits,
): HttpServerOptions & Pick<TlsOptions, "handshakeTimeout"> {
  return {
    keepAliveTimeout: limits.idleTimeoutMs,
    handshakeTimeout: limits.handshakeTimeoutMs,
    // A connection's HTTP parser starts when its handshake ends, so this also closes a
    // connection that never sends a request.
    headersTimeout: limits.handshakeTimeoutMs,
    requestTimeout: limits.handshakeTimeoutMs,
    connectionsCheckingInterval: CHECK_INTERVAL_MS,
  };
}

/** How often, at most, refused connections are logged while the limit holds. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * Caps `server` at `limits.maxConnections` open connections. Node refuses the ones past it
 * (it closes them as soon as they are accepted); the first refusal is logged at once, later
 * ones as a count at most every 10 s, so a flood cannot flood the log too. `flag` names the
 * option that raises the limit. Connections already open, and their requests, go on.
 */
export function capConnections(
  server: NetServer,
  limits: ConnectionLimits,
  log: Logger,
  flag: string,
): void {
  server.maxConnections = limits.maxConnections;
  let refused = 0;
  let timer: NodeJS.Timeout | undefined;
  const report = (remoteAddress?: string) => {
    log.warn(
      { maxConnections: limits.maxConnections, refused, remoteAddress },
      `connection refused: ${limits.maxConnections} connections are open, the limit (${flag})`,
    );
    refused = 0;
    timer = setTimeout(flush, REFUSAL_LOG_INTERVAL_MS).unref();
  };
  // Logs the refusals counted since the last line, and goes quiet once there are none.
  const flush = () => {
    timer = undefined;
    if (refused > 0) report();
  };
  server.on("drop", (data?: { remoteAddress?: string }) => {
    refused += 1;
    if (timer === undefined) report(data?.remoteAddress);
  });
  server.once("close", () => clearTimeout(timer));
}

function secondsParser(flag: string): (value: string) => number {
  return (value) => {
    const seconds = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || seconds <= 0 || seconds > 3600) {
      throw new InvalidArgumentError(`${flag} expects seconds, more than 0 and at most 3600.`);
    }
    return seconds * 1000;
  };
}

function parseMaxConnections(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError("expected a whole number of connections, at least 1.");
  }
  return Number(value);
}

/**
 * The command-line options for `ConnectionLimits`, each also read from an environment
 * variable `<envPrefix>_IDLE_TIMEOUT` (seconds), `_HANDSHAKE_TIMEOUT` (seconds) and
 * `_MAX_CONNECTIONS`; the flag wins over the variable.
 */
export function connectionLimitFlags(envPrefix: string): Option[] {
  const defaults = DEFAULT_CONNECTION_LIMITS;
  return [
    new Option(
      "--idle-timeout <seconds>",
      "close a kept-alive connection after this long without a request",
    )
      .env(`${envPrefix}_IDLE_TIMEOUT`)
      .argParser(secondsParser("--idle-timeout"))
      .default(defaults.idleTimeoutMs, String(defaults.idleTimeoutMs / 1000)),
    new Option(
      "--handshake-timeout <seconds>",
      "close a connection whose TLS handshake, or request headers, take longer",
    )
      .env(`${envPrefix}_HANDSHAKE_TIMEOUT`)
      .argParser(secondsParser("--handshake-timeout"))
      .default(defaults.handshakeTimeoutMs, String(defaults.handshakeTimeoutMs / 1000)),
    new Option("--max-connections <n>", "refuse new connections while this many are open")
      .env(`${envPrefix}_MAX_CONNECTIONS`)
      .argParser(parseMaxConnections)
      .default(defaults.maxConnections),
  ];
}
