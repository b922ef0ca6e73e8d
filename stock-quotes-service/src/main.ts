#!/usr/bin/env node
// stock-quotes-service: serves stock quotes over SPIFFE mTLS to one authorized SPIFFE ID.
import { createServer as createHttpServer } from "node:http";
import {
  closeServer,
  expressServerOptions,
  listen,
  runService,
  svidHealth,
} from "@federation-demo/service-kit";
import { AuthorizationError, authorizeID, createMtlsHttpsServer, SpiffeError } from "spiffe-node";
import { createHealthApp, createQuotesApp } from "./app.js";
import { parseOptions } from "./options.js";
import { QuoteBook } from "./quotes.js";

await runService({
  name: "stock-quotes-service",
  parseOptions,
  async serve(context) {
    // `stopping` is read later, so it stays on the context (destructuring would copy it).
    const { options, log, source, onShutdown } = context;
    const health = () => svidHealth(source);

    if (options.healthPort !== undefined) {
      const healthApp = createHealthApp(health, log);
      const healthServer = createHttpServer(expressServerOptions(healthApp), healthApp);
      onShutdown(() => closeServer(healthServer));
      const port = await listen(healthServer, options.healthPort, "127.0.0.1", "--health-port");
      log.info({ url: `http://127.0.0.1:${port}/healthz` }, "health endpoint listening");
    }

    // Nothing to present before the first SVID, so the HTTPS port opens only then.
    await source.ready();
    if (context.stopping) return;

    const app = createQuotesApp({ book: new QuoteBook(), log, health });
    const server = createMtlsHttpsServer(
      {
        svidSource: source,
        bundleSource: source,
        authorizer: authorizeID(options.authorizedId),
        // Kept-alive clients were authenticated under the old bundles: when they change (a
        // trust domain federated or dropped, a CA rotated), they connect and are verified again.
        trustChanges: source,
        onPeerRejected: (error, remoteAddress) => {
          log.warn(
            {
              remoteAddress,
              peer: error instanceof AuthorizationError ? error.peerId.toString() : undefined,
              code: error instanceof SpiffeError ? error.code : undefined,
              reason: error.message,
            },
            "peer rejected",
          );
        },
        onPeerAccepted: (peerId, socket) => {
          const peerSvid = socket.getPeerX509Certificate();
          log.debug(
            {
              peer: peerId.toString(),
              remoteAddress: socket.remoteAddress,
              peerSvidExpiresAt: peerSvid && new Date(peerSvid.validTo).toISOString(),
            },
            "peer accepted",
          );
        },
      },
      app,
      expressServerOptions(app),
    );
    onShutdown(() => closeServer(server));
    // Registered after the server's own listener, so this is logged once they are closed.
    source.on("bundlesChanged", () => {
      log.info("trust bundles changed: closing idle connections so clients authenticate again");
    });
    const port = await listen(server, options.port, options.host, "--port");
    log.info(
      { host: options.host, port, authorizedId: options.authorizedId.toString() },
      `listening for HTTPS with SPIFFE mTLS on ${options.host}:${port}`,
    );
  },
});
