import { parseWorkloadId, resolveEndpointAddress, type SpiffeId } from "@federation-demo/spiffe";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

/** The command line of the broker webapp, checked. */
export interface WebappOptions {
  port: number;
  host: string;
  /** Workload API address, e.g. unix:///tmp/agent.sock. */
  socket: string;
  quotesUrl: URL;
  quotesId: SpiffeId;
  logLevel: string;
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
      `${(error as Error).message} (expected a workload ID such as spiffe://stocksmarket.org/quotes-service).`,
    );
  }
}

export function parseQuotesUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(
      "not a URL (expected e.g. https://stock-quotes-service:8090/quotes).",
    );
  }
  if (url.protocol !== "https:") {
    throw new InvalidArgumentError(
      "the quotes service speaks HTTPS with SPIFFE mTLS, so the URL must start with https://.",
    );
  }
  if (url.username || url.password) {
    throw new InvalidArgumentError("user info in the URL is not used by SPIFFE mTLS; remove it.");
  }
  return url;
}

/**
 * Parses `argv` (without node and the script). Throws a CommanderError on bad input or
 * after printing --help; the caller exits with exitCodeFor(error).
 */
export function parseOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): WebappOptions {
  const program = new Command("broker-webapp")
    .description(
      "Shows stock quotes fetched over SPIFFE mTLS from the stock quotes service " +
        "(the broker's side of the SPIRE federation tutorial).",
    )
    .addOption(
      new Option("--port <port>", "HTTP port for the web page").argParser(parsePort).default(8080),
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
      new Option("--quotes-url <url>", "where the stock quotes service serves its quotes")
        .argParser(parseQuotesUrl)
        .default(
          parseQuotesUrl("https://stock-quotes-service:8090/quotes"),
          "https://stock-quotes-service:8090/quotes",
        ),
    )
    .addOption(
      new Option("--quotes-id <spiffe-id>", "the SPIFFE ID the quotes service must present")
        .argParser(parseId)
        .default(
          parseId("spiffe://stocksmarket.org/quotes-service"),
          "spiffe://stocksmarket.org/quotes-service",
        ),
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
    quotesUrl: URL;
    quotesId: SpiffeId;
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
    quotesUrl: opts.quotesUrl,
    quotesId: opts.quotesId,
    logLevel: opts.logLevel,
  };
}

/** Exit code for a CommanderError: 0 after --help, USAGE_EXIT_CODE for bad input. */
export function exitCodeFor(error: CommanderError): number {
  return error.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
}

export { CommanderError };
