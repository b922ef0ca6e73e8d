import {
  type ConnectionLimits,
  connectionLimitFlags,
  parsePort,
  type ServiceOptions,
  serviceOptionsParser,
  workloadIdOption,
} from "@federation-demo/service-kit";
import { Option } from "commander";
import type { SpiffeId } from "spiffe-node";

/** The stock quotes service's own options. */
interface QuotesServiceOwnOptions {
  /** The only client SPIFFE ID that gets quotes. */
  authorizedId: SpiffeId;
  /** Plain-HTTP /healthz on 127.0.0.1; undefined = off. */
  healthPort?: number;
}

/** The connection-limit flags as Commander parses them (milliseconds, a count). */
interface LimitFlags {
  idleTimeout: number;
  handshakeTimeout: number;
  maxConnections: number;
}

/** The command line of the stock quotes service, checked. */
export type QuotesServiceOptions = ServiceOptions &
  QuotesServiceOwnOptions & {
    /** Bounds on the mTLS port's connections: idle and handshake timeouts, how many at once. */
    limits: ConnectionLimits;
  };

const ABOUT =
  "Serves stock quotes as JSON over SPIFFE mTLS, only to the authorized SPIFFE ID " +
  "(the stock market's side of the SPIRE federation tutorial).";
const PORT = { description: "HTTPS port to listen on", default: 8090 };

const parseCommandLine = serviceOptionsParser<QuotesServiceOwnOptions & LimitFlags>(
  { name: "stock-quotes-service", description: ABOUT, port: PORT },
  (program) => {
    program
      .addOption(
        workloadIdOption(
          "--authorized-id <spiffe-id>",
          "the only client SPIFFE ID that gets quotes",
          "spiffe://broker.org/webapp",
        ),
      )
      .addOption(
        new Option(
          "--health-port <port>",
          "also serve plain-HTTP GET /healthz on 127.0.0.1 at this port (off by default)",
        ).argParser(parsePort),
      );
    for (const option of connectionLimitFlags("QUOTES")) program.addOption(option);
    return program;
  },
);

/**
 * The quotes service's command line: the common options, --authorized-id, --health-port and
 * the connection limits (--idle-timeout, --handshake-timeout, --max-connections).
 */
export function parseOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): QuotesServiceOptions {
  const { idleTimeout, handshakeTimeout, maxConnections, ...options } = parseCommandLine(argv, env);
  return {
    ...options,
    limits: { idleTimeoutMs: idleTimeout, handshakeTimeoutMs: handshakeTimeout, maxConnections },
  };
}
