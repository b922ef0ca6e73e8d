#!/usr/bin/env node
// broker-webapp: a web page of stock quotes fetched over SPIFFE mTLS from the quotes service.
import { createServer } from "node:http";
import {
  closeServer,
  createLogger,
  DEMO_WORKLOAD_API_BACKOFF,
  expressServerOptions,
  handleShutdown,
  listen,
  logIdentityChanges,
  parseCommandLineOrExit,
} from "@federation-demo/service-kit";
import type { Logger } from "pino";
import { X509Source } from "spiffe-node";
import { createWebapp } from "./app.js";
import { parseOptions, type WebappOptions } from "./options.js";
import { BundleHistory } from "./trust.js";
import { QuotesClient } from "./upstream.js";

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
    backoff: DEMO_WORKLOAD_API_BACKOFF,
    logger: log.child({ component: "workload-api" }),
  });
  const stopIdentityLog = logIdentityChanges(source, log);
  const client = new QuotesClient({
    url: options.quotesUrl,
    quotesId: options.quotesId,
    svidSource: source,
    bundleSource: source,
    onRetry: (reason) => log.info({ reason }, "quotes request sent again on a new connection"),
  });
  // The trust panel: each bundle's authorities and when they last changed.
  const bundleHistory = new BundleHistory();
  source.on("bundlesChanged", (bundles) => bundleHistory.update(bundles));
  // A kept-alive connection was authenticated under the old bundles: when they change
  // (a trust domain federated or dropped, a CA rotated), authenticate the server afresh.
  // No connection could be made without bundles, so their first arrival changes nothing.
  source.on("bundlesChanged", (_bundles, previous) => {
    if (previous.size === 0) return;
    log.info("trust bundles changed: new connections to the quotes service");
    client.dropConnections();
  });
  // Unlike the original, the page is served at once and explains while there is no SVID.
  const app = createWebapp({ source, client, quotesId: options.quotesId, bundleHistory, log });
  const server = createServer(expressServerOptions(app), app);

  const shutdown = handleShutdown(log, async () => {
    stopIdentityLog();
    source.close();
    await closeServer(server);
    await client.close();
  });

  try {
    const port = await listen(server, options.port, options.host, "--port");
    log.info(
      { host: options.host, port, url: `http://localhost:${port}/quotes` },
      `web page at http://localhost:${port}/quotes (listening on ${options.host}:${port})`,
    );
  } catch (error) {
    shutdown.startupFailed(error);
  }
}

const options = parseCommandLineOrExit(parseOptions);
const log = createLogger("broker-webapp", options.logLevel);
await run(options, log);
