import { STATUS_CODES } from "node:http";
import express, {
  type ErrorRequestHandler,
  type Express,
  type RequestHandler,
  type Response,
} from "express";
import type { Logger } from "pino";

/** How a service answers errors: JSON for an API, plain text for a browser page. */
export type AnswerFormat = "json" | "text";

/** An Express app without the headers the services never want (X-Powered-By, ETag). */
export function createExpressApp(): Express {
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  return app;
}

/** A short answer: `{"error": message}`, or the message as one line of text. */
function answer(res: Response, format: AnswerFormat, status: number, message: string): void {
  res.status(status);
  if (format === "json") {
    res.json({ error: message });
  } else {
    res.type("text/plain").send(`${message.charAt(0).toUpperCase()}${message.slice(1)}\n`);
  }
}

/** 405 for a method other than GET and HEAD on a route that has them. */
export function methodNotAllowed(format: AnswerFormat): RequestHandler {
  return (_req, res) => {
    res.set("Allow", "GET, HEAD");
    answer(res, format, 405, "method not allowed: use GET");
  };
}

/** 404 for every path no route took; `hint` says where to go instead. */
export function notFound(format: AnswerFormat, hint: string): RequestHandler {
  return (_req, res) => answer(res, format, 404, `not found: ${hint}`);
}

/**
 * The last handler: an error (e.g. a malformed URL) becomes its HTTP status, or 500, with
 * the status's name and never a stack trace; the error itself goes to the log.
 */
export function errorAnswers(format: AnswerFormat, log: Logger): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    log.error({ err: error }, "request failed");
    const status = (error as { status?: unknown }).status;
    const code = typeof status === "number" && status >= 400 && status < 600 ? status : 500;
    answer(res, format, code, (STATUS_CODES[code] ?? "error").toLowerCase());
  };
}
