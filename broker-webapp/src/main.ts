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
import { JwtSource, X509Source } from "@federation-demo/spiffe";
import type { Logger } from "pino";
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
      auth: options.auth,
    },
    "starting broker-webapp",
  );

  const source = new X509Source({
    address: options.socket,
    backoff: DEMO_WORKLOAD_API_BACKOFF,
    logger: log.child({ component: "workload-api" }),
  });
  const stopIdentityLog = logIdentityChanges(source, log);
  // The JWT road: a JWT-SVID for the quotes service's audience, cached and refreshed by
  // the source before it expires; and the JWT bundles, for the trust panel.
  const jwtSource =
    options.auth === "jwt"
      ? new JwtSource({
          address: options.socket,
          backoff: DEMO_WORKLOAD_API_BACKOFF,
          logger: log.child({ component: "workload-api-jwt" }),
        })
      : undefined;
  const audience = options.quotesId.toString();
  const client = new QuotesClient({
    ...(jwtSource === undefined ? {} : { bearer: () => jwtSource.fetchJwtSvid({ audience }) }),
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

  const shutdown = handleShutdown(log, async () => {
    stopIdentityLog();
    source.close();
    jwtSource?.close();
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
