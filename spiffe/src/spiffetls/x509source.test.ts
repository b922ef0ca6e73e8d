import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { status } from "@grpc/grpc-js";
import { request } from "undici";
import { parseWorkloadId } from "../spiffeid/spiffeid.js";
import { type IssuedSvid, TestCa } from "../testing/ca.js";
import { FakeWorkloadApi, type FakeX509Response } from "../testing/fake-workload-api.js";
import { X509Source } from "../workloadapi/x509source.js";
import { VerificationError } from "../x509svid/index.js";
import { authorizeID } from "./authorize.js";
import { connectMtls, createMtlsAgent, createMtlsHttpsServer, MtlsError } from "./index.js";

// SPIFFE mTLS fed by X509Sources that follow fake Workload API agents: changes made on
// the agents' streams must reach the very next connection, without a restart.

const WEBAPP = "spiffe://broker.org/webapp";
const QUOTES = "spiffe://stocksmarket.org/quotes-service";
const BROKER_TD = "spiffe://broker.org";
const STOCKS_TD = "spiffe://stocksmarket.org";

let brokerCa: TestCa;
let stocksCa: TestCa;
let brokerAgent: FakeWorkloadApi;
let stocksAgent: FakeWorkloadApi;
let webappSource: X509Source;
let quotesSource: X509Source;
let server: ReturnType<typeof createMtlsHttpsServer>;
let port: number;
const rejected: Error[] = [];

function response(
  spiffeId: string,
  svid: IssuedSvid,
  ca: TestCa,
  federated: Record<string, Buffer>,
): FakeX509Response {
  return {
    svids: [{ spiffeId, chainDer: svid.chainDer, keyDer: svid.keyDer, bundleDer: ca.bundleDer() }],
    federatedBundles: federated,
  };
}

/** Changes what the stock market's agent serves and waits until the source has it. */
async function serveQuotes(x509: FakeX509Response): Promise<void> {
  const updated = once(quotesSource, "update");
  stocksAgent.setX509(x509);
  await updated;
}

function webappAgent() {
  return createMtlsAgent({
    svidSource: webappSource,
    bundleSource: webappSource,
    authorizer: authorizeID(parseWorkloadId(QUOTES)),
  });
}

async function fetchPeer(): Promise<string> {
  const agent = webappAgent();
  try {
    const res = await request(`https://127.0.0.1:${port}/`, { dispatcher: agent });
    return await res.body.text();
  } finally {
    await agent.close();
  }
}

async function presentedLeaf(): Promise<string | undefined> {
  const socket = await connectMtls(
    {
      svidSource: webappSource,
      bundleSource: webappSource,
      authorizer: authorizeID(parseWorkloadId(QUOTES)),
    },
    { host: "127.0.0.1", port },
  );
  const fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
  socket.destroy();
  return fingerprint;
}

let quotesSvid: IssuedSvid;

before(async () => {
  brokerCa = await TestCa.create("broker.org");
  stocksCa = await TestCa.create("stocksmarket.org");
  quotesSvid = await stocksCa.issue(QUOTES);
  brokerAgent = await FakeWorkloadApi.start();
  stocksAgent = await FakeWorkloadApi.start();
  brokerAgent.setX509(
    response(WEBAPP, await brokerCa.issue(WEBAPP), brokerCa, { [STOCKS_TD]: stocksCa.bundleDer() }),
  );
  stocksAgent.setX509(
    response(QUOTES, quotesSvid, stocksCa, { [BROKER_TD]: brokerCa.bundleDer() }),
  );
  const backoff = { initialMs: 20, maxMs: 100 };
  webappSource = new X509Source({ address: brokerAgent.address, backoff });
  quotesSource = new X509Source({ address: stocksAgent.address, backoff });
  await Promise.all([
    webappSource.ready({ timeoutMs: 5000 }),
    quotesSource.ready({ timeoutMs: 5000 }),
  ]);

  server = createMtlsHttpsServer(
    {
      svidSource: quotesSource,
      bundleSource: quotesSource,
      authorizer: authorizeID(parseWorkloadId(WEBAPP)),
      onPeerRejected: (error) => rejected.push(error),
    },
    (_req, res) => res.end("ok"),
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  const closed = once(server, "close");
  server.close();
  server.closeAllConnections();
  await closed;
  webappSource.close();
  quotesSource.close();
  await Promise.all([brokerAgent.stop(), stocksAgent.stop()]);
});

describe("SPIFFE mTLS with X509Sources following the Workload API", { timeout: 30_000 }, () => {
  test("federated workloads authenticate each other", async () => {
    assert.equal(await fetchPeer(), "ok");
  });

  test("a rotated SVID on the stream is presented on the next connection", async () => {
    assert.equal(await presentedLeaf(), quotesSvid.certificates[0]?.fingerprint256);
    const rotated = await stocksCa.issue(QUOTES);
    await serveQuotes(response(QUOTES, rotated, stocksCa, { [BROKER_TD]: brokerCa.bundleDer() }));
    assert.equal(await presentedLeaf(), rotated.certificates[0]?.fingerprint256);
    assert.equal(await fetchPeer(), "ok");
  });

  test("a federated bundle removed from the stream refuses that trust domain from the next connection", async () => {
    rejected.length = 0;
    await serveQuotes(response(QUOTES, quotesSvid, stocksCa, {}));
    await assert.rejects(fetchPeer());
    assert.equal(rejected.length, 1);
    assert.ok(rejected[0] instanceof VerificationError);
    assert.equal(rejected[0].code, "no-bundle");

    await serveQuotes(
      response(QUOTES, quotesSvid, stocksCa, { [BROKER_TD]: brokerCa.bundleDer() }),
    );
    assert.equal(await fetchPeer(), "ok");
  });

  test("a transient PERMISSION_DENIED: connections in the window succeed; then the renewed SVID", async () => {
    rejected.length = 0;
    const current = quotesSource.getX509Svid()?.leaf.fingerprint256;
    // The agent refuses the stream and does not answer the retry yet: the window stays open.
    const refused = new Promise((resolve) => quotesSource.once("error", resolve));
    stocksAgent.endStreamsWith(status.PERMISSION_DENIED, "no identity issued");
    stocksAgent.withholdX509();
    await refused;
    assert.equal(await fetchPeer(), "ok");
    assert.equal(await presentedLeaf(), current, "the current SVID is still presented");

    const renewed = await stocksCa.issue(QUOTES);
    const installed = new Promise((resolve) => quotesSource.once("svidChanged", resolve));
    stocksAgent.setX509(response(QUOTES, renewed, stocksCa, { [BROKER_TD]: brokerCa.bundleDer() }));
    await installed;
    assert.equal(await presentedLeaf(), renewed.certificates[0]?.fingerprint256);
    assert.equal(await fetchPeer(), "ok");
    assert.deepEqual(rejected, [], "no connection was refused");
  });

  test("a confirmed PERMISSION_DENIED withdraws the SVID: the server refuses handshakes until a new one", async () => {
    rejected.length = 0;
    // events.once would reject on the first refusal's "error"; the withdrawal comes after.
    const withdrawn = new Promise((resolve) => quotesSource.once("svidChanged", resolve));
    stocksAgent.failWith(status.PERMISSION_DENIED, "no identity issued");
    await withdrawn;
    assert.equal(quotesSource.getX509Svid(), undefined);
    await assert.rejects(fetchPeer());
    assert.equal(rejected.length, 1);
    assert.ok(rejected[0] instanceof MtlsError);
    assert.equal(rejected[0].code, "no-svid");

    const restored = once(quotesSource, "update");
    stocksAgent.failWith(undefined);
    await restored;
    assert.equal(await fetchPeer(), "ok");
  });
});
