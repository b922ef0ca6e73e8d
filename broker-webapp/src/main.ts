#!/usr/bin/env node
// broker-webapp: a web page of stock quotes fetched over SPIFFE mTLS from the quotes service.
import { createServer } from "node:http";
import { X509Source } from "@federation-demo/spiffe";
import type { Logger } from "pino";
import { createWebapp } from "./app.js";
import { logIdentityChanges } from "./identity-log.js";
import { ListenError, listen } from "./listen.js";
import { createLogger } from "./logger.js";
import { CommanderError, exitCodeFor, parseOptions, type WebappOptions } from "./options.js";
import { QuotesClient } from "./upstream.js";

const SHUTDOWN_GRACE_MS = 5_000;

function readOptions(): WebappOptions {
  try {
    return parseOptions(process.argv.slice(2));
  } catch (error) {
    // Commander has already printed the message (or the help).
    if (error instanceof CommanderError) process.exit(exitCodeFor(error));
    throw error;
  }
}

async function run(options: WebappOptions, log: Logger): Promise<void> {
  log.info(
    {
      host: options.host,
      port: options.port,
      socket: options.socket,
      quotesUrl: options.quotesUrl.toString(),
      quotesId: options.quotesId.toString(),
    },
    "starting broker-webapp",
  );

  const source = new X509Source({
    address: options.socket,
    logger: log.child({ component: "workload-api" }),
  });
  const stopIdentityLog = logIdentityChanges(source, log);
  const client = new QuotesClient({
    url: options.quotesUrl,
    quotesId: options.quotesId,
    svidSource: source,
    bundleSource: source,
  });
  // A kept-alive connection was authenticated under the old bundles: when they change
  // (a trust domain federated or dropped, a CA rotated), authenticate the server afresh.
  // No connection could be made without bundles, so their first arrival changes nothing.
  source.on("bundlesChanged", (_bundles, previous) => {
    if (previous.size === 0) return;
    log.info("trust bundles changed: new connections to the quotes service");
    client.dropConnections();
  });
  // Unlike the original, the page is served at once and explains while there is no SVID.
  const server = createServer(createWebapp({ source, client, quotesId: options.quotesId, log }));

  let stopping = false;
  const stop = (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, "shutting down");
    stopIdentityLog();
    source.close();
    const exit = () => process.exit(exitCode);
    setTimeout(exit, SHUTDOWN_GRACE_MS).unref();
    const closeClient = () => {
      client.close().then(exit, exit);
    };
    if (!server.listening) {
      closeClient();
      return;
    }
    server.close(closeClient);
    server.closeAllConnections();
  };
  process.once("SIGTERM", () => stop("SIGTERM", 0));
  process.once("SIGINT", () => stop("SIGINT", 0));

  try {
    const port = await listen(server, options.port, options.host, "--port");
    log.info(
      { host: options.host, port, url: `http://localhost:${port}/quotes` },
      `web page at http://localhost:${port}/quotes (listening on ${options.host}:${port})`,
    );
  } catch (error) {
    if (error instanceof ListenError) {
      log.fatal({ error: error.message }, error.message);
    } else {
      log.fatal({ err: error }, "failed to start");
    }
    stop("start-up failed", 1);
  }
}

const options = readOptions();
const log = createLogger("broker-webapp", options.logLevel);
await run(options, log);
