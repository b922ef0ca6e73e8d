// An Express app served over SPIFFE mTLS: only spiffe://broker.org/webapp may call it.
// SPIFFE_ENDPOINT_SOCKET=unix:///tmp/agent.sock PORT=9443 node dist/https-server.js
import type { AddressInfo } from "node:net";
import express from "express";
import {
  authorizeID,
  createMtlsHttpsServer,
  parseWorkloadId,
  peerIdOf,
  X509Source,
} from "spiffe-node";

// The Workload API address comes from SPIFFE_ENDPOINT_SOCKET.
const source = new X509Source();
await source.ready({ timeoutMs: 30_000 });

const app = express();
app.get("/hello", (req, res) => {
  // Only authenticated, authorized peers reach a handler, so the ID is always there.
  res.json({ hello: String(peerIdOf(req)) });
});

const server = createMtlsHttpsServer(
  {
    svidSource: source,
    bundleSource: source,
    authorizer: authorizeID(parseWorkloadId("spiffe://broker.org/webapp")),
    // Idle kept-alive connections are closed when trust changes, so they re-authenticate.
    trustChanges: source,
    onPeerRejected: (error, address) => console.error(`refused ${address}: ${error.message}`),
  },
  app,
);
server.listen(Number(process.env.PORT ?? 9443), "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  console.log(`listening on https://127.0.0.1:${port}/hello`);
});

process.once("SIGTERM", () => {
  server.close(() => source.close());
  server.closeIdleConnections();
});
