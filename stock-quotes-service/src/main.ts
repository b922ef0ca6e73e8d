#!/usr/bin/env node
// stock-quotes-service: serves stock quotes over SPIFFE mTLS to one authorized SPIFFE ID.
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
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
import {
  AuthorizationError,
  authorizeID,
  createMtlsHttpsServer,
  SpiffeError,
  X509Source,
} from "spiffe-node";
import { createHealthApp, createQuotesApp, type HealthReport } from "./app.js";
import { parseOptions, type QuotesServiceOptions } from "./options.js";
import { QuoteBook } from "./quotes.js";

async function run(options: QuotesServiceOptions, log: Logger): Promise<void> {
  log.info(
    {
      host: options.host,
      port: options.port,
      socket: options.socket,
      authorizedId: options.authorizedId.toString(),
      healthPort: options.healthPort,
    },
    "starting stock-quotes-service",
  );

  const source = new X509Source({
    address: options.socket,
    backoff: DEMO_WORKLOAD_API_BACKOFF,
    logger: log.child({ component: "workload-api" }),
  });
  const stopIdentityLog = logIdentityChanges(source, log);
  const health = (): HealthReport => {
    const svid = source.getX509Svid();
    return {
      hasSvid: svid !== undefined,
      spiffeId: svid?.id.toString() ?? null,
      svidExpiresAt: svid?.expiresAt.toISOString() ?? null,
    };
  };

  let server: HttpsServer | undefined;
  let healthServer: HttpServer | undefined;
  const shutdown = handleShutdown(log, async () => {
    stopIdentityLog();
    source.close();
    await Promise.all([closeServer(server), closeServer(healthServer)]);
  });

  try {
    if (options.healthPort !== undefined) {
      const healthApp = createHealthApp(health);
      healthServer = createHttpServer(expressServerOptions(healthApp), healthApp);
      const port = await listen(healthServer, options.healthPort, "127.0.0.1", "--health-port");
      log.info({ url: `http://127.0.0.1:${port}/healthz` }, "health endpoint listening");
    }

    // Nothing to present before the first SVID, so the HTTPS port opens only then.
    await source.ready();
    if (shutdown.stopping) return;

    const app = createQuotesApp({ book: new QuoteBook(), log, health });
    server = createMtlsHttpsServer(
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
    // Registered after the server's own listener, so this is logged once they are closed.
    source.on("bundlesChanged", () => {
      log.info("trust bundles changed: closing idle connections so clients authenticate again");
    });
    const port = await listen(server, options.port, options.host, "--port");
    log.info(
      { host: options.host, port, authorizedId: options.authorizedId.toString() },
      `listening for HTTPS with SPIFFE mTLS on ${options.host}:${port}`,
    );
  } catch (error) {
    shutdown.startupFailed(error);
  }
}

const options = parseCommandLineOrExit(parseOptions);
const log = createLogger("stock-quotes-service", options.logLevel);
await run(options, log);
