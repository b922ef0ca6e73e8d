#!/usr/bin/env node
// broker-webapp: a web page of stock quotes fetched over SPIFFE mTLS from the quotes service.
import { createServer } from "node:http";
import {
  closeServer,
  expressServerOptions,
  listen,
  runService,
} from "@federation-demo/service-kit";
import { createWebapp } from "./app.js";
import { parseOptions } from "./options.js";
import { BundleHistory } from "./trust.js";
import { QuotesClient } from "./upstream.js";

await runService({
  name: "broker-webapp",
  parseOptions,
  async serve({ options, log, source, onShutdown }) {
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
    onShutdown(() => closeServer(server));
    onShutdown(() => client.close());

    const port = await listen(server, options.port, options.host, "--port");
    log.info(
      { host: options.host, port, url: `http://localhost:${port}/quotes` },
      `web page at http://localhost:${port}/quotes (listening on ${options.host}:${port})`,
    );
  },
});
