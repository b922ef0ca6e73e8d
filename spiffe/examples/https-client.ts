// An undici client calling the HTTPS example over SPIFFE mTLS; it accepts only a server
// that proves it is spiffe://stocksmarket.org/quotes-service.
// SPIFFE_ENDPOINT_SOCKET=unix:///tmp/agent.sock node dist/https-client.js https://127.0.0.1:9443/hello
import { authorizeID, createMtlsAgent, parseWorkloadId, X509Source } from "spiffe-node";
import { request } from "undici";

const url = process.argv[2] ?? "https://127.0.0.1:9443/hello";

const source = new X509Source();
await source.ready({ timeoutMs: 30_000 });

// The agent keeps authenticated connections alive and reuses them.
const agent = createMtlsAgent({
  svidSource: source,
  bundleSource: source,
  authorizer: authorizeID(parseWorkloadId("spiffe://stocksmarket.org/quotes-service")),
});
try {
  const response = await request(url, { dispatcher: agent });
  console.log(response.statusCode, await response.body.text());
} finally {
  await agent.close();
  source.close();
}
