import express, { type Express, type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { peerIdOf } from "spiffe-node";
import type { QuoteBook } from "./quotes.js";

/** What /healthz reports. */
export interface HealthReport {
  hasSvid: boolean;
  spiffeId: string | null;
  svidExpiresAt: string | null;
}

export interface QuotesAppOptions {
  book: QuoteBook;
  log: Logger;
  health: () => HealthReport;
}

function methodNotAllowed(_req: Request, res: Response): void {
  res.set("Allow", "GET, HEAD").status(405).json({ error: "method not allowed; use GET" });
}

/** Errors (e.g. a malformed URL) answered as short JSON, never with a stack trace. */
function jsonErrors(error: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) {
    next(error);
    return;
  }
  const status = (error as { status?: unknown }).status;
  const code = typeof status === "number" && status >= 400 && status < 600 ? status : 500;
  res.status(code).json({ error: code === 500 ? "internal error" : (error as Error).message });
}

/** The routes served over mTLS: GET /quotes, GET /healthz; 405 for other methods, 404 elsewhere. */
export function createQuotesApp({ book, log, health }: QuotesAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");

  app.use((req, res, next) => {
    res.on("finish", () => {
      log.debug(
        {
          peer: peerIdOf(req)?.toString(),
          method: req.method,
          path: req.path,
          status: res.statusCode,
        },
        "request served",
      );
    });
    next();
  });

  app.get("/quotes", (_req, res) => {
    res.set("Cache-Control", "no-store").json(book.next());
  });
  app.all("/quotes", methodNotAllowed);

  app.get("/healthz", (_req, res) => {
    res.set("Cache-Control", "no-store").json(health());
  });
  app.all("/healthz", methodNotAllowed);

  app.use((_req, res) => {
    res.status(404).json({ error: "not found; the quotes are at GET /quotes" });
  });
  app.use(jsonErrors);
  return app;
}

/** The plain-HTTP app for the optional loopback health port: only GET /healthz. */
export function createHealthApp(health: () => HealthReport): Express {
  const app = express();
  app.disable("x-powered-by");
  app.get("/healthz", (_req, res) => {
    res.set("Cache-Control", "no-store").json(health());
  });
  app.all("/healthz", methodNotAllowed);
  app.use((_req, res) => {
    res.status(404).json({ error: "not found; this port only serves GET /healthz" });
  });
  app.use(jsonErrors);
  return app;
}
