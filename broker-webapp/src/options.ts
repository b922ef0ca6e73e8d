import {
  checkListenAndSocket,
  hostOption,
  logLevelOption,
  portOption,
  socketOption,
  workloadIdOption,
} from "@federation-demo/service-kit";
import { Command, InvalidArgumentError, Option } from "commander";
import type { SpiffeId } from "spiffe-node";

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
    .addOption(portOption("HTTP port for the web page", 8080))
    .addOption(hostOption())
    .addOption(socketOption(env))
    .addOption(
      new Option("--quotes-url <url>", "where the stock quotes service serves its quotes")
        .argParser(parseQuotesUrl)
        .default(
          parseQuotesUrl("https://stock-quotes-service:8090/quotes"),
          "https://stock-quotes-service:8090/quotes",
        ),
    )
    .addOption(
      workloadIdOption(
        "--quotes-id <spiffe-id>",
        "the SPIFFE ID the quotes service must present",
        "spiffe://stocksmarket.org/quotes-service",
      ),
    )
    .addOption(logLevelOption())
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
  return {
    port: opts.port,
    host: opts.host,
    socket: checkListenAndSocket(program, opts.host, opts.socket),
    quotesUrl: opts.quotesUrl,
    quotesId: opts.quotesId,
    logLevel: opts.logLevel,
  };
}
