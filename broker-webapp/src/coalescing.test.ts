// The webapp's page loads and its calls to the quotes service: loads that arrive while a
// call is in flight share it; a load arriving after it settled makes a new one. The
// webapp runs in this process (its Express app and the real QuotesClient) against an
// in-process SPIFFE mTLS quotes server that holds each request until the test answers it.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import {
  authorizeID,
  createMtlsHttpsServer,
  parseWorkloadId,
  WorkloadApiAddress,
  X509BundleSet,
} from "spiffe-node";
import { TestCa } from "spiffe-node/testing";
import { createWebapp, type IdentitySource } from "./app.js";
import { BundleHistory } from "./trust.js";
import { QuotesClient } from "./upstream.js";

const WEBAPP_ID = parseWorkloadId("spiffe://broker.org/webapp");
const QUOTES_ID = parseWorkloadId("spiffe://stocksmarket.org/quotes-service");
const LOADS = 12;

function quoteAt(price: number): string {
  return JSON.stringify([
    {
      Symbol: "AAAA",
      Price: price,
      Open: 50,
      Low: 40,
      High: 60,
      Close: 49,
      Time: new Date().toISOString(),
    },
  ]);
}

/** Requests wait here until the test answers them. */
interface HeldRequest {
  answer(status: number, body: string): void;
}

function listenOn(server: Server | HttpsServer): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server | HttpsServer): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

interface Health {
  upstream: { calls: number; sharedLoads: number; tlsHandshakes: number };
}

describe("broker-webapp: page loads share a call to the quotes service in flight", {
  timeout: 60_000,
}, () => {
  const held: HeldRequest[] = [];
  let quotesServer: HttpsServer;
  let webServer: Server;
  let client: QuotesClient;
  let base: string;
  let onRequest: (() => void) | undefined;

  before(async () => {
    const [brokerCa, stocksCa] = await Promise.all([
      TestCa.create("broker.org"),
      TestCa.create("stocksmarket.org"),
    ]);
    const webappSvid = (await brokerCa.issue(WEBAPP_ID.toString())).svid();
    const quotesSvid = (await stocksCa.issue(QUOTES_ID.toString())).svid();
    const bundles = new X509BundleSet([brokerCa.bundle(), stocksCa.bundle()]);

    quotesServer = createMtlsHttpsServer(
      {
        svidSource: { getX509Svid: () => quotesSvid },
        bundleSource: bundles,
        authorizer: authorizeID(WEBAPP_ID),
      },
      (_req, res) => {
        held.push({
          answer: (status, body) =>
            res.writeHead(status, { "content-type": "application/json" }).end(body),
        });
        onRequest?.();
      },
    );
    const quotesPort = await listenOn(quotesServer);

    client = new QuotesClient({
      url: new URL(`https://127.0.0.1:${quotesPort}/quotes`),
      quotesId: QUOTES_ID,
      svidSource: { getX509Svid: () => webappSvid },
      bundleSource: bundles,
      // Generous: the test holds requests on purpose.
      timeoutMs: 30_000,
    });
    const source: IdentitySource = {
      getX509Svid: () => webappSvid,
      getX509Bundles: () => bundles,
      lastError: undefined,
      refusedUpdates: 0,
      lastRefusal: undefined,
      address: WorkloadApiAddress.parse("unix:///nowhere/agent.sock"),
    };
    webServer = createServer(
      createWebapp({
        source,
        client,
        quotesId: QUOTES_ID,
        bundleHistory: new BundleHistory(),
        log: pino({ level: "silent" }),
      }),
    );
    base = `http://127.0.0.1:${await listenOn(webServer)}`;
  });

  after(async () => {
    await close(webServer);
    await client.close();
    await close(quotesServer);
  });

  async function health(): Promise<Health> {
    return (await fetch(`${base}/healthz`)).json() as Promise<Health>;
  }

  async function load(): Promise<string> {
    const response = await fetch(`${base}/quotes`);
    assert.equal(response.status, 200);
    return response.text();
  }

  /** Resolves once the quotes server holds `count` requests in all. */
  function requestsReach(count: number): Promise<void> {
    return new Promise((resolve) => {
      if (held.length >= count) {
        resolve();
        return;
      }
      onRequest = () => {
        if (held.length < count) return;
        onRequest = undefined;
        resolve();
      };
    });
  }

  /** Resolves once `count` page loads in all have joined a call in flight (10 s at most). */
  async function sharedLoadsReach(count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    let shared = 0;
    while (Date.now() < deadline) {
      shared = (await health()).upstream.sharedLoads;
      if (shared >= count) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.fail(`${shared} page loads shared a call in flight, expected ${count}`);
  }

  it("sends one request for page loads that arrive together, and all show its quotes", async () => {
    const before = await health();
    const firstRequest = held.length;
    const pages = Array.from({ length: LOADS }, () => load());
    await requestsReach(firstRequest + 1);
    // Every load has reached the webapp and joined the call in flight.
    await sharedLoadsReach(before.upstream.sharedLoads + LOADS - 1);
    held[firstRequest]?.answer(200, quoteAt(123.45));

    for (const html of await Promise.all(pages)) {
      assert.match(html, /<td>AAAA<\/td><td>123\.45<\/td>/);
      assert.doesNotMatch(html, /Quotes service unavailable/);
    }
    assert.equal(held.length, firstRequest + 1, `one request for ${LOADS} page loads`);
    const after = await health();
    assert.equal(after.upstream.calls - before.upstream.calls, 1);
    assert.equal(after.upstream.sharedLoads - before.upstream.sharedLoads, LOADS - 1);
  });

  it("shares a failed call the same way: every load shows its error", async () => {
    const before = await health();
    const firstRequest = held.length;
    const pages = Array.from({ length: LOADS }, () => load());
    await requestsReach(firstRequest + 1);
    await sharedLoadsReach(before.upstream.sharedLoads + LOADS - 1);
    held[firstRequest]?.answer(503, "{}");

    for (const html of await Promise.all(pages)) {
      assert.match(html, /Quotes service unavailable<\/strong>: HTTP status 503/);
    }
    assert.equal(held.length, firstRequest + 1, "one request, its error shared");
    assert.equal((await health()).upstream.calls - before.upstream.calls, 1);
  });

  it("makes a new call for a load that arrives after the previous call completed", async () => {
    const firstRequest = held.length;
    const first = load();
    await requestsReach(firstRequest + 1);
    held[firstRequest]?.answer(200, quoteAt(111.11));
    assert.match(await first, /<td>111\.11<\/td>/);

    // The first call is over: this load must not get its result, but a call of its own.
    const second = load();
    await requestsReach(firstRequest + 2);
    held[firstRequest + 1]?.answer(200, quoteAt(222.22));
    const html = await second;
    assert.match(html, /<td>222\.22<\/td>/);
    assert.doesNotMatch(html, /111\.11/);
    assert.equal(held.length, firstRequest + 2);
  });

  it("makes a new call for a load that arrives after a failed call", async () => {
    const firstRequest = held.length;
    const first = load();
    await requestsReach(firstRequest + 1);
    held[firstRequest]?.answer(500, "{}");
    assert.match(await first, /HTTP status 500/);

    const second = load();
    await requestsReach(firstRequest + 2);
    held[firstRequest + 1]?.answer(200, quoteAt(333.33));
    const html = await second;
    assert.match(html, /<td>333\.33<\/td>/);
    assert.doesNotMatch(html, /Quotes service unavailable/);
  });
});
