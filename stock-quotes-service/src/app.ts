import {
  createExpressApp,
  errorAnswers,
  methodNotAllowed,
  notFound,
  type SvidHealth,
} from "@federation-demo/service-kit";
import type { Express, RequestHandler } from "express";
import type { Logger } from "pino";
import { peerIdOf } from "spiffe-node";
import type { QuoteBook } from "./quotes.js";

/** What createQuotesApp serves from. */
export interface QuotesAppOptions {
  book: QuoteBook;
  log: Logger;
  /** What /healthz reports. */
  health: () => SvidHealth;
  /**
   * Runs before every route: on the JWT road, the JWT-SVID check (on the mTLS road the
   * TLS layer has already authenticated and authorized the client).
   */
  authenticate?: RequestHandler;
}

/** The routes served over mTLS: GET /quotes, GET /healthz; 405 for other methods, 404 elsewhere. */
export function createQuotesApp({ book, log, health, authenticate }: QuotesAppOptions): Express {
  const app = createExpressApp();

  app.use((req, res, next) => {
    res.on("finish", () => {
      log.debug(
        {
          peer: peerIdOf(req)?.toString() ?? res.locals.peer,
          method: req.method,
          path: req.path,
          status: res.statusCode,
        },
        "request served",
      );
    });
    next();
  });
  if (authenticate !== undefined) app.use(authenticate);

  app.get("/quotes", (_req, res) => {
    res.set("Cache-Control", "no-store").json(book.next());
  });
  app.all("/quotes", methodNotAllowed("json"));

  app.get("/healthz", (_req, res) => {
    res.set("Cache-Control", "no-store").json(health());
  });
  app.all("/healthz", methodNotAllowed("json"));

  app.use(notFound("json", "the quotes are at GET /quotes"));
  app.use(errorAnswers("json", log));
  return app;
}

/** The plain-HTTP app for the optional loopback health port: only GET /healthz. */
export function createHealthApp(health: () => SvidHealth, log: Logger): Express {
  const app = createExpressApp();
  app.get("/healthz", (_req, res) => {
    res.set("Cache-Control", "no-store").json(health());
  });
  app.all("/healthz", methodNotAllowed("json"));
  app.use(notFound("json", "this port only serves GET /healthz"));
  app.use(errorAnswers("json", log));
  return app;
}
