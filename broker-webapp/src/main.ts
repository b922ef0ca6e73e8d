#!/usr/bin/env node
// broker-webapp: a web page of stock quotes fetched over SPIFFE mTLS from the quotes service.
import { createServer } from "node:http";
import {
  closeServer,
  expressServerOptions,
  jwtSourceFor,
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
  async serve(context) {
    const { options, log, source, onShutdown } = context;
    // The JWT road: a JWT-SVID for the quotes service's audience, cached and refreshed by
    // the source before it expires; and the JWT bundles, for the trust panel.
    const jwtSource = jwtSourceFor(context);
    const audience = options.quotesId.toString();
    const client = new QuotesClient({
      ...(jwtSource === undefined
        ? {}
        : {
            bearer: (fresh: boolean) =>
              fresh ? jwtSource.refetchJwtSvid({ audience }) : jwtSource.fetchJwtSvid({ audience }),
          }),
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
    jwtSource?.on("svidFetched", (svid) =>
      log.info({ keyId: svid.keyId, expiresAt: svid.expiresAt.toISOString() }, "new JWT-SVID"),
    );
    const jwtTrust =
      jwtSource &&
      (() => ({
        bundles: jwtSource
          .getJwtBundles()
          .bundles()
          .map((bundle) => ({ trustDomain: bundle.trustDomain.name, keyIds: bundle.keyIds() })),
        signedBy: client.lastToken && {
          trustDomain: client.lastToken.id.trustDomain.name,
          keyId: client.lastToken.keyId,
        },
      }));
    const app = createWebapp({
      source,
      client,
      quotesId: options.quotesId,
      bundleHistory,
      log,
      ...(jwtTrust === undefined ? {} : { jwtTrust }),
    });
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
