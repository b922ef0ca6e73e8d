// Node's own floor for the benchmark: the quotes service's routes behind a plain
// `https` server that requires a client certificate and lets Node (OpenSSL) check it
// against the broker's bundle. No SPIFFE ID check, no authorizer, no Workload API.
// Started by system.mjs with the certificate files in BENCH_CERT, BENCH_KEY, BENCH_CA;
// prints {"msg":"listening","port":N} once it listens on 127.0.0.1.
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { expressServerOptions } from "@federation-demo/service-kit";
import { createQuotesApp } from "@federation-demo/stock-quotes-service/dist/app.js";
import { QuoteBook } from "@federation-demo/stock-quotes-service/dist/quotes.js";
import { pino } from "pino";

const app = createQuotesApp({
  book: new QuoteBook(),
  log: pino({ level: "silent" }),
  health: () => ({ hasSvid: true, spiffeId: null, svidExpiresAt: null }),
});
const server = createServer(
  {
    cert: readFileSync(process.env.BENCH_CERT ?? ""),
    key: readFileSync(process.env.BENCH_KEY ?? ""),
    ca: readFileSync(process.env.BENCH_CA ?? ""),
    requestCert: true,
    rejectUnauthorized: true,
    // As the quotes service does, so that only the TLS layer differs.
    ...expressServerOptions(app),
  },
  app,
);
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ msg: "listening", port: server.address().port }));
});
process.once("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
