import { parseWorkloadId, resolveEndpointAddress, type SpiffeId } from "@federation-demo/spiffe";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

/** The command line of the stock quotes service, checked. */
export interface QuotesServiceOptions {
  port: number;
  host: string;
  /** Workload API address, e.g. unix:///tmp/agent.sock. */
  socket: string;
  authorizedId: SpiffeId;
  logLevel: string;
  /** Plain-HTTP /healthz on 127.0.0.1; undefined = off. */
  healthPort: number | undefined;
}

export const DEFAULT_SOCKET = "unix:///tmp/agent.sock";
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Exit code for a command line that cannot be used (as most Unix tools do). */
export const USAGE_EXIT_CODE = 2;

export function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError("expected a port number from 0 to 65535 (0 = any free port).");
  }
  return Number(value);
}

/** The Workload API address, checked by the library (which says what a valid one looks like). */
export function parseSocket(value: string): string {
  return resolveEndpointAddress(value, {}).address;
}

export function parseId(value: string): SpiffeId {
  try {
    return parseWorkloadId(value);
  } catch (error) {
    throw new InvalidArgumentError(
      `${(error as Error).message} (expected a workload ID such as spiffe://broker.org/webapp).`,
    );
  }
}

/**
 * Parses `argv` (without node and the script). Throws a CommanderError on bad input or
 * after printing --help; the caller exits with its exitCode.
 */
export function parseOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): QuotesServiceOptions {
  const program = new Command("stock-quotes-service")
    .description(
      "Serves stock quotes as JSON over SPIFFE mTLS, only to the authorized SPIFFE ID " +
        "(the stock market's side of the SPIRE federation tutorial).",
    )
    .addOption(
      new Option("--port <port>", "HTTPS port to listen on").argParser(parsePort).default(8090),
    )
    .addOption(new Option("--host <host>", "address to listen on").default("0.0.0.0"))
    .addOption(
      new Option(
        "--socket <address>",
        "Workload API address (unix:///path or tcp://ip:port)",
      ).default(
        env.SPIFFE_ENDPOINT_SOCKET || DEFAULT_SOCKET,
        "$SPIFFE_ENDPOINT_SOCKET, else unix:///tmp/agent.sock",
      ),
    )
    .addOption(
      new Option("--authorized-id <spiffe-id>", "the only client SPIFFE ID that gets quotes")
        .argParser(parseId)
        .default(parseId("spiffe://broker.org/webapp"), "spiffe://broker.org/webapp"),
    )
    .addOption(
      new Option(
        "--health-port <port>",
        "also serve plain-HTTP GET /healthz on 127.0.0.1 at this port (off by default)",
      ).argParser(parsePort),
    )
    .addOption(new Option("--log-level <level>", "log level").choices(LOG_LEVELS).default("info"))
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false)
    .exitOverride()
    .parse([...argv], { from: "user" });

  const opts = program.opts<{
    port: number;
    host: string;
    socket: string;
    authorizedId: SpiffeId;
    healthPort?: number;
    logLevel: string;
  }>();
  if (opts.host.trim() === "") {
    program.error("error: option '--host <host>' must not be empty", { exitCode: USAGE_EXIT_CODE });
  }
  let socket = "";
  try {
    socket = parseSocket(opts.socket);
  } catch (error) {
    const from =
      program.getOptionValueSource("socket") === "cli" ? "--socket" : "SPIFFE_ENDPOINT_SOCKET";
    program.error(`error: ${from} is invalid: ${(error as Error).message}`, {
      exitCode: USAGE_EXIT_CODE,
    });
  }
  return {
    port: opts.port,
    host: opts.host,
    socket,
    authorizedId: opts.authorizedId,
    logLevel: opts.logLevel,
    healthPort: opts.healthPort,
  };
}

/** Exit code for a CommanderError: 0 after --help, USAGE_EXIT_CODE for bad input. */
export function exitCodeFor(error: CommanderError): number {
  return error.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
}

export { CommanderError };
