import {
  checkListenAndSocket,
  hostOption,
  logLevelOption,
  parsePort,
  portOption,
  socketOption,
  workloadIdOption,
} from "@federation-demo/service-kit";
import { Command, Option } from "commander";
import type { SpiffeId } from "spiffe-node";

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

/**
 * Parses `argv` (without node and the script). Throws a CommanderError on bad input or
 * after printing --help; the caller exits with exitCodeFor(error).
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
    .addOption(portOption("HTTPS port to listen on", 8090))
    .addOption(hostOption())
    .addOption(socketOption(env))
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
    authorizedId: SpiffeId;
    healthPort?: number;
    logLevel: string;
  }>();
  return {
    port: opts.port,
    host: opts.host,
    socket: checkListenAndSocket(program, opts.host, opts.socket),
    authorizedId: opts.authorizedId,
    logLevel: opts.logLevel,
    healthPort: opts.healthPort,
  };
}
