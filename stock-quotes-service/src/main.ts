#!/usr/bin/env node
// stock-quotes-service: serves stock quotes over SPIFFE mTLS to one authorized SPIFFE ID.
import { createServer as createHttpServer } from "node:http";
import {
  capConnections,
  closeServer,
  connectionLimitOptions,
  expressServerOptions,
  jwtSourceFor,
  listen,
  runService,
  svidHealth,
} from "@federation-demo/service-kit";
import {
  AuthorizationError,
  authorizeID,
  createMtlsHttpsServer,
  createTlsHttpsServer,
  SpiffeError,
} from "spiffe-node";
import { createHealthApp, createQuotesApp } from "./app.js";
import { requireJwtSvid } from "./jwt-auth.js";
import { parseOptions } from "./options.js";
import { QuoteBook } from "./quotes.js";

await runService({
  name: "stock-quotes-service",
  parseOptions,
  async serve(context) {
    // `stopping` is read later, so it stays on the context (destructuring would copy it).
    const { options, log, source, onShutdown } = context;
    const health = () => svidHealth(source);
    // The JWT road: the JWT bundles of every trust domain, to validate bearer tokens locally.
    const jwtSource = jwtSourceFor(context);
    if (jwtSource !== undefined) {
      jwtSource.on("bundlesChanged", (bundles) => {
        const keys = Object.fromEntries(
          bundles.bundles().map((bundle) => [bundle.trustDomain.name, bundle.keyIds()]),
        );
        log.info({ jwtAuthorities: keys }, "JWT bundles changed");
      });
    }

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

    const authenticate =
      jwtSource &&
      requireJwtSvid({
        bundles: jwtSource,
        audience: () => source.getX509Svid()?.id.toString(),
        authorizedId: options.authorizedId,
        log,
      });
    const app = createQuotesApp({ book: new QuoteBook(), log, health, authenticate });
    const onNoSvid = (error: Error, remoteAddress: string | undefined) =>
      log.warn({ remoteAddress, reason: error.message }, "connection dropped");
    // Other organisations' clients reach this port: bound how long a connection may sit
    // idle or half set up, and how many there may be (each one costs native memory).
    const serverOptions = {
      ...expressServerOptions(app),
      ...connectionLimitOptions(options.limits),
    };
    const server = jwtSource
      ? createTlsHttpsServer({ svidSource: source, onPeerRejected: onNoSvid }, app, serverOptions)
      : createMtlsHttpsServer(
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
              // Copying the peer's certificate costs native memory: only when it is logged.
              if (!log.isLevelEnabled("debug")) return;
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
          serverOptions,
        );
    onShutdown(() => closeServer(server));
    capConnections(server, options.limits, log, "--max-connections");
    // Registered after the server's own listener, so this is logged once they are closed.
    source.on("bundlesChanged", () => {
      log.info("trust bundles changed: closing idle connections so clients authenticate again");
    });
    const port = await listen(server, options.port, options.host, "--port");
    log.info(
      {
        host: options.host,
        port,
        authorizedId: options.authorizedId.toString(),
        auth: options.auth,
      },
      jwtSource
        ? `listening for HTTPS (TLS with our X.509-SVID; clients send a JWT-SVID) on ${options.host}:${port}`
        : `listening for HTTPS with SPIFFE mTLS on ${options.host}:${port}`,
    );
  },
});
