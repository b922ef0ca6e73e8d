// End to end: both services as real processes, each against its own trust domain's fake
// Workload API (with the other trust domain's bundle federated), as in the tutorial.
import assert from "node:assert/strict";
import { createServer as createNetServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import {
  authorizeID,
  connectMtls,
  createMtlsHttpsServer,
  parseSpiffeId,
  X509BundleSet,
  type X509Svid,
} from "spiffe-node";
import { TestCa } from "spiffe-node/testing";
import {
  eventually,
  Federation,
  getPage,
  type LogLine,
  QUOTES_ID,
  QUOTES_MAIN,
  ServiceProcess as Service,
  type ServiceProcess,
  startQuotesService,
  startWebapp,
  TcpForwarder,
  tableRows,
  WEBAPP_ID,
  WEBAPP_MAIN,
} from "./services-test-support.js";

/** gRPC status code the agent answers with until a registration entry matches the caller. */
const PERMISSION_DENIED = 7;
const PRICE = /^-?\d+\.\d{2}$/;
const CLOCK = /^\d{2}:\d{2}:\d{2}$/;

/** Every row is either all "-" (never changed) or a symbol, five prices and a time. */
function assertWellFormedRows(rows: string[][]): void {
  for (const row of rows) {
    assert.equal(row.length, 7, `row ${JSON.stringify(row)}`);
    const [, ...values] = row;
    if (values.every((v) => v === "-")) continue;
    assert.ok(
      values.slice(0, 5).every((v) => PRICE.test(v)),
      `prices in ${JSON.stringify(row)}`,
    );
    assert.match(values[5] ?? "", CLOCK);
  }
}

function pricedRows(rows: string[][]): number {
  return rows.filter((row) => PRICE.test(row[1] ?? "")).length;
}

interface HealthJson {
  hasSvid: boolean;
  spiffeId: string | null;
  refusedSvidUpdates: {
    count: number;
    last: { at: string; code: string; rule: string | null; reason: string } | null;
  };
  upstream: {
    lastResult: { ok: boolean; reason?: string } | null;
    verifiedPeer: string | null;
    tlsHandshakes: number;
    retries: number;
  };
}

async function health(port: number): Promise<HealthJson> {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(response.status, 200);
  return (await response.json()) as HealthJson;
}

/** A raw TLS client against the quotes service: what (if anything) comes back to a GET. */
function rawGet(
  port: number,
  credentials: { cert: string; key: string } | undefined,
  ca: string,
): Promise<{ data: string; error: string | undefined }> {
  return new Promise((resolve) => {
    let data = "";
    let error: string | undefined;
    const socket = tlsConnect({
      host: "127.0.0.1",
      port,
      ca,
      ...credentials,
      // SVIDs carry no DNS names; the server's identity is not under test here.
      checkServerIdentity: () => undefined,
    });
    socket.setEncoding("utf8");
    socket.on("secureConnect", () => {
      socket.write("GET /quotes HTTP/1.1\r\nHost: quotes\r\nConnection: close\r\n\r\n");
    });
    socket.on("data", (chunk: string) => {
      data += chunk;
    });
    socket.on("error", (e) => {
      error = e.message;
    });
    socket.on("close", () => resolve({ data, error }));
    socket.setTimeout(5000, () => socket.destroy(new Error("timed out")));
  });
}

function credentialsOf(svid: X509Svid): { cert: string; key: string } {
  return { cert: svid.certificatesPem(), key: svid.privateKeyPem() };
}

describe("broker-webapp and stock-quotes-service across two trust domains", {
  timeout: 120_000,
}, () => {
  let federation: Federation;
  let quotes: ServiceProcess;
  let webapp: ServiceProcess;
  let quotesPort: number;
  let webPort: number;

  before(async () => {
    federation = await Federation.create();
    await federation.issueWebappSvid();
    await federation.issueQuotesSvid();
    quotes = startQuotesService(federation, ["--log-level", "debug"]);
    quotesPort = await quotes.port();
    webapp = startWebapp(federation, `https://127.0.0.1:${quotesPort}/quotes`);
    webPort = await webapp.port();
  });

  after(async () => {
    const exits = await Promise.all([webapp?.stop(), quotes?.stop()]);
    await federation?.stop();
    for (const exit of exits) {
      if (exit) assert.deepEqual(exit, { code: 0, signal: null }, "SIGTERM exits 0");
    }
  });

  it("shows the 11 quotes, fetched over mTLS, and who is who", async () => {
    await quotes.waitForLog(
      (l) => l.msg === "X.509 SVID received" && l.spiffeId === QUOTES_ID,
      "SVID received",
      { from: 0 },
    );
    let html = await getPage(webPort);
    // Each load moves each quote with probability 1/4: load until every quote has opened.
    for (let load = 0; load < 80 && pricedRows(tableRows(html)) < 11; load++) {
      html = await getPage(webPort);
    }
    const rows = tableRows(html);
    assert.deepEqual(
      rows.map((row) => row[0]),
      ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF", "GGGG", "HHHH", "IIII", "JJJJ", "KKKK"],
    );
    assertWellFormedRows(rows);
    assert.equal(pricedRows(rows), 11);
    assert.doesNotMatch(html, /Quotes service unavailable/);
    assert.match(html, /<caption>Last Updated: \d{2}:\d{2}:\d{2}<\/caption>/);
    assert.ok(html.includes(WEBAPP_ID), "own ID in the identity panel");
    assert.ok(html.includes(QUOTES_ID), "verified peer in the identity panel");
    assert.ok(html.includes("broker.org, stocksmarket.org"), "bundles held");

    const report = await health(webPort);
    assert.equal(report.hasSvid, true);
    assert.equal(report.spiffeId, WEBAPP_ID);
    assert.deepEqual(report.upstream.lastResult?.ok, true);
    assert.equal(report.upstream.verifiedPeer, QUOTES_ID);
  });

  it("reuses its TLS connection: 100 page loads take far fewer than 100 handshakes", async (t) => {
    // A fresh webapp, so its count covers every handshake it ever made.
    const fresh = startWebapp(federation, `https://127.0.0.1:${quotesPort}/quotes`);
    try {
      const port = await fresh.port();
      await fresh.waitForLog((l) => l.msg === "X.509 SVID received", "SVID received", { from: 0 });
      const acceptedBefore = quotes.logs.filter((l) => l.msg === "peer accepted").length;
      for (let load = 0; load < 100; load++) {
        const html = await getPage(port);
        assert.equal(tableRows(html).length, 11);
        assert.doesNotMatch(html, /Quotes service unavailable/);
      }
      const handshakes = (await health(port)).upstream.tlsHandshakes;
      const accepted = quotes.logs.filter((l) => l.msg === "peer accepted").length - acceptedBefore;
      const note =
        `TLS handshakes for 100 page loads: ${handshakes} (the webapp's count), ` +
        `${accepted} (the quotes service's "peer accepted" log lines)`;
      t.diagnostic(note);
      console.log(note);
      assert.equal(handshakes, accepted, "both ends count the same connections");
      assert.ok(
        handshakes >= 1 && handshakes <= 3,
        `expected 1 to 3 handshakes, got ${handshakes}`,
      );
    } finally {
      assert.deepEqual(await fresh.stop(), { code: 0, signal: null });
    }
  });

  it("accepts the webapp's own SVID from a raw TLS client (control for the refusals below)", async () => {
    const svid = (await federation.brokerCa.issue(WEBAPP_ID)).svid();
    const answer = await rawGet(
      quotesPort,
      credentialsOf(svid),
      federation.stocksCa.bundle().toPem(),
    );
    assert.match(answer.data, /^HTTP\/1\.1 200 /);
    assert.match(answer.data, /"Symbol":"AAAA"/);
  });

  it("the quotes service refuses a client with another SPIFFE ID", async () => {
    const intruder = "spiffe://broker.org/intruder";
    const svid = (await federation.brokerCa.issue(intruder)).svid();
    const from = quotes.mark();
    const answer = await rawGet(
      quotesPort,
      credentialsOf(svid),
      federation.stocksCa.bundle().toPem(),
    );
    assert.equal(answer.data, "", "no application data");
    const line = await quotes.waitForLog((l) => l.msg === "peer rejected", "peer rejected", {
      from,
    });
    assert.equal(line.peer, intruder);
    assert.equal(line.code, "unauthorized");
    assert.equal(line.reason, `peer ${intruder} is not the expected ${WEBAPP_ID}`);
  });

  it("the quotes service refuses a client without a certificate", async () => {
    const from = quotes.mark();
    const answer = await rawGet(quotesPort, undefined, federation.stocksCa.bundle().toPem());
    assert.equal(answer.data, "", "no application data");
    const line = await quotes.waitForLog((l) => l.msg === "peer rejected", "peer rejected", {
      from,
    });
    assert.equal(line.code, "no-peer-certificate");
    assert.equal(line.peer, undefined);
    assert.match(String(line.reason), /^the peer presented no certificate/);
  });

  it("the quotes service refuses the webapp's ID on a chain that broker.org's CA did not sign", async () => {
    // Signed by the stock market's CA, which the quotes service trusts, but for broker.org:
    // only broker.org's bundle may vouch for a broker.org ID.
    const crossSigned = (await federation.stocksCa.issue(WEBAPP_ID)).svid();
    // Signed by a stranger calling itself broker.org.
    const rogueCa = await TestCa.create("broker.org");
    const rogue = (await rogueCa.issue(WEBAPP_ID)).svid();
    // Naming broker.org's CA (name and key identifier), signed with the stranger's key.
    const forged = (
      await federation.brokerCa.issue(WEBAPP_ID, { forgeSignatureWith: rogueCa })
    ).svid();
    const cases: [string, X509Svid][] = [
      ["cross-signed", crossSigned],
      ["rogue CA", rogue],
      ["forged signature", forged],
    ];
    for (const [what, svid] of cases) {
      const from = quotes.mark();
      const answer = await rawGet(
        quotesPort,
        credentialsOf(svid),
        federation.stocksCa.bundle().toPem(),
      );
      assert.equal(answer.data, "", `${what}: no application data`);
      const line = await quotes.waitForLog((l) => l.msg === "peer rejected", "peer rejected", {
        from,
      });
      assert.equal(line.peer, undefined, `${what}: refused before authorization`);
      assert.equal(line.code, "untrusted", what);
      assert.match(
        String(line.reason),
        /^peer certificate for spiffe:\/\/broker\.org\/webapp does not chain to the X\.509 bundle of broker\.org /,
        what,
      );
    }
    // The page keeps working for the real webapp.
    assert.equal(tableRows(await getPage(webPort)).length, 11);
  });

  it("keeps working when either side's SVID rotates, and presents the new one", async () => {
    const webappFrom = webapp.mark();
    const quotesFrom = quotes.mark();
    const webappExpiry = await federation.issueWebappSvid({
      notAfter: new Date(Date.now() + 2 * 3600_000),
    });
    const quotesExpiry = await federation.issueQuotesSvid({
      notAfter: new Date(Date.now() + 3 * 3600_000),
    });
    const rotated = (l: LogLine, expiry: Date) =>
      l.msg === "X.509 SVID rotated" && l.expiresAt === expiry.toISOString();
    await webapp.waitForLog((l) => rotated(l, webappExpiry), "webapp SVID rotated", {
      from: webappFrom,
    });
    await quotes.waitForLog((l) => rotated(l, quotesExpiry), "quotes SVID rotated", {
      from: quotesFrom,
    });
    for (let load = 0; load < 5; load++) {
      const html = await getPage(webPort);
      assert.equal(tableRows(html).length, 11);
      assert.doesNotMatch(html, /Quotes service unavailable/);
    }
    // The identity panel shows the new expiry (YYYY-MM-DD HH:MM:SS, server local time).
    const pad = (n: number) => String(n).padStart(2, "0");
    const e = webappExpiry;
    const shown = `${e.getFullYear()}-${pad(e.getMonth() + 1)}-${pad(e.getDate())} ${pad(e.getHours())}:${pad(e.getMinutes())}:${pad(e.getSeconds())}`;
    assert.ok((await getPage(webPort)).includes(shown), `identity panel shows expiry ${shown}`);

    // A new connection to the quotes service gets its new certificate...
    const svid = (await federation.brokerCa.issue(WEBAPP_ID)).svid();
    const socket = await connectMtls(
      {
        svidSource: { getX509Svid: () => svid },
        bundleSource: new X509BundleSet([
          federation.brokerCa.bundle(),
          federation.stocksCa.bundle(),
        ]),
        authorizer: authorizeID(parseSpiffeId(QUOTES_ID)),
      },
      { host: "127.0.0.1", port: quotesPort },
    );
    const presented = socket.getPeerX509Certificate();
    socket.destroy();
    assert.equal(new Date(presented?.validTo ?? 0).getTime(), quotesExpiry.getTime());

    // ...and after the quotes service restarts, the webapp reconnects with its new SVID.
    assert.deepEqual(await quotes.stop(), { code: 0, signal: null });
    quotes = startQuotesService(federation, ["--log-level", "debug", "--port", String(quotesPort)]);
    await quotes.port();
    assert.equal(tableRows(await getPage(webPort)).length, 11);
    // A new process: its first accepted peer is the webapp reconnecting.
    const accepted = await quotes.waitForLog((l) => l.msg === "peer accepted", "peer accepted", {
      from: 0,
    });
    assert.equal(accepted.peerSvidExpiresAt, webappExpiry.toISOString());
  });

  it("shows the error line with the last quotes while the quotes service is down, then recovers", async () => {
    const before = tableRows(await getPage(webPort));
    assert.deepEqual(await quotes.stop(), { code: 0, signal: null });

    const from = webapp.mark();
    const down = await getPage(webPort);
    assert.match(down, /Quotes service unavailable<\/strong>: connection refused/);
    assert.deepEqual(tableRows(down), before, "the last quotes stay on the page");
    await webapp.waitForLog((l) => l.msg === "quotes service unavailable", "unavailable logged", {
      from,
    });
    assert.equal((await health(webPort)).upstream.lastResult?.ok, false);

    quotes = startQuotesService(federation, ["--log-level", "debug", "--port", String(quotesPort)]);
    await quotes.port();
    const back = await getPage(webPort);
    assert.doesNotMatch(back, /Quotes service unavailable/);
    assert.equal(tableRows(back).length, 11);
    assert.equal((await health(webPort)).upstream.lastResult?.ok, true);
  });

  it("serves /healthz on the mTLS port to the authorized peer, and 404/405 elsewhere", async () => {
    const svid = (await federation.brokerCa.issue(WEBAPP_ID)).svid();
    const ca = federation.stocksCa.bundle().toPem();
    const send = (request: string) =>
      new Promise<string>((resolve, reject) => {
        let data = "";
        const socket = tlsConnect({
          host: "127.0.0.1",
          port: quotesPort,
          ca,
          ...credentialsOf(svid),
          checkServerIdentity: () => undefined,
        });
        socket.setEncoding("utf8");
        socket.on("secureConnect", () => socket.write(request));
        socket.on("data", (chunk: string) => {
          data += chunk;
        });
        socket.on("error", reject);
        socket.on("close", () => resolve(data));
      });
    const healthz = await send("GET /healthz HTTP/1.1\r\nHost: q\r\nConnection: close\r\n\r\n");
    assert.match(healthz, /^HTTP\/1\.1 200 /);
    assert.match(healthz, /"hasSvid":true/);
    assert.match(
      await send(
        "POST /quotes HTTP/1.1\r\nHost: q\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      ),
      /^HTTP\/1\.1 405 /,
    );
    assert.match(
      await send("GET /nope HTTP/1.1\r\nHost: q\r\nConnection: close\r\n\r\n"),
      /^HTTP\/1\.1 404 /,
    );
    const post = await fetch(`http://127.0.0.1:${webPort}/quotes`, { method: "POST" });
    assert.equal(post.status, 405);
  });

  it("ignores a bad SVID from its agent, keeps serving with the good one, and counts it on /healthz", async () => {
    const before = await health(webPort);
    assert.equal(before.hasSvid, true);
    await federation.issueWebappSvid({ isCa: true });
    const after = await eventually(async () => {
      const now = await health(webPort);
      return now.refusedSvidUpdates.count > before.refusedSvidUpdates.count ? now : undefined;
    }, "the refusal on /healthz");
    assert.equal(after.refusedSvidUpdates.count, before.refusedSvidUpdates.count + 1);
    assert.equal(after.hasSvid, true, "the good SVID stays in service");
    assert.equal(after.spiffeId, WEBAPP_ID);
    assert.equal(after.refusedSvidUpdates.last?.code, "bad-svid");
    assert.equal(after.refusedSvidUpdates.last?.rule, "leaf-is-ca");
    const page = await fetch(`http://127.0.0.1:${webPort}/quotes`);
    assert.equal(page.status, 200);
    assert.doesNotMatch(await page.text(), /Quotes service unavailable/);
    await federation.issueWebappSvid();
  });

  it("stops trusting the quotes service when the federated bundle goes, and trusts it again when it returns", async () => {
    assert.equal(tableRows(await getPage(webPort)).length, 11, "a kept-alive connection exists");
    const bundlesHeld = (expected: string, fromLine: number) =>
      webapp.waitForLog(
        (l) =>
          /^(X\.509 SVID rotated|trust bundles changed)$/.test(l.msg) &&
          String(l.trustDomains) === expected,
        `bundles held: ${expected}`,
        { from: fromLine },
      );
    let fromLine = webapp.mark();
    await federation.issueWebappSvid({}, false);
    await bundlesHeld("broker.org", fromLine);
    const html = await getPage(webPort);
    assert.ok(
      html.includes(
        "Quotes service unavailable</strong>: mTLS refused: no X.509 bundle for trust domain stocksmarket.org,",
      ),
      "the page says the stock market's bundle is missing",
    );
    assert.ok(!html.includes("broker.org, stocksmarket.org"), "identity panel: one bundle left");

    fromLine = webapp.mark();
    await federation.issueWebappSvid();
    await bundlesHeld("broker.org,stocksmarket.org", fromLine);
    const back = await getPage(webPort);
    assert.doesNotMatch(back, /Quotes service unavailable/);
    assert.equal(tableRows(back).length, 11);
    assert.equal((await health(webPort)).upstream.lastResult?.ok, true);

    // The same on the quotes service's side: without broker.org's bundle, the webapp is out.
    fromLine = quotes.mark();
    await federation.issueQuotesSvid({}, false);
    await quotes.waitForLog(
      (l) => /^trust bundles changed/.test(l.msg),
      "quotes service: trust bundles changed",
      { from: fromLine },
    );
    assert.match(await getPage(webPort), /Quotes service unavailable<\/strong>/);
    const rejected = await quotes.waitForLog((l) => l.msg === "peer rejected", "webapp rejected", {
      from: fromLine,
    });
    assert.equal(rejected.code, "no-bundle");
    assert.match(
      String(rejected.reason),
      /^no X\.509 bundle for trust domain broker\.org, so spiffe:\/\/broker\.org\/webapp cannot be authenticated/,
    );

    await federation.issueQuotesSvid();
    await quotes.waitForLog(
      (l) =>
        l.msg === "X.509 SVID rotated" && String(l.trustDomains) === "broker.org,stocksmarket.org",
      "quotes service: broker.org bundle back",
      { from: fromLine },
    );
    assert.equal(tableRows(await getPage(webPort)).length, 11);
    assert.doesNotMatch(await getPage(webPort), /Quotes service unavailable/);
  });

  it("the quotes service rides through a transient PERMISSION_DENIED; after a confirmed one it refuses new connections", async () => {
    // A webapp with no connection yet, so its first page load needs a new TLS handshake.
    const fresh = startWebapp(federation, `https://127.0.0.1:${quotesPort}/quotes`);
    let fromLine = quotes.mark();
    try {
      const freshPort = await fresh.port();
      await fresh.waitForLog((l) => l.msg === "X.509 SVID received", "SVID received", {
        from: 0,
      });

      // The agent refuses the stream and keeps the retry waiting, as while it renews its
      // own SVID: the page still loads, over a connection made in that window.
      fromLine = quotes.mark();
      federation.stocksApi.endStreamsWith(PERMISSION_DENIED, "no identity issued");
      federation.stocksApi.withholdX509();
      await quotes.waitForLog((l) => l.msg === "Workload API error", "refusal", {
        from: fromLine,
      });
      const html = await getPage(freshPort);
      assert.doesNotMatch(html, /Quotes service unavailable/);
      assert.equal(tableRows(html).length, 11);
      assert.equal((await health(freshPort)).upstream.tlsHandshakes, 1);
      await federation.issueQuotesSvid();
      await quotes.waitForLog((l) => l.msg === "X.509 SVID rotated", "renewed", {
        from: fromLine,
      });
      assert.ok(
        !quotes.logs.slice(fromLine).some((l) => l.msg === "X.509 SVID withdrawn"),
        "never withdrawn",
      );

      // Refused again on the retry: withdrawn, and a new connection is refused.
      fromLine = quotes.mark();
      federation.stocksApi.failWith(PERMISSION_DENIED, "no identity issued");
      await quotes.waitForLog((l) => l.msg === "X.509 SVID withdrawn", "withdrawn", {
        from: fromLine,
      });
      const other = startWebapp(federation, `https://127.0.0.1:${quotesPort}/quotes`);
      try {
        const otherPort = await other.port();
        await other.waitForLog((l) => l.msg === "X.509 SVID received", "SVID received", {
          from: 0,
        });
        assert.match(await getPage(otherPort), /Quotes service unavailable<\/strong>/);
      } finally {
        assert.deepEqual(await other.stop(), { code: 0, signal: null });
      }
    } finally {
      assert.deepEqual(await fresh.stop(), { code: 0, signal: null });
      federation.stocksApi.failWith(undefined);
      await federation.issueQuotesSvid();
    }
    // Received again after the withdrawal (fromLine was marked before it).
    await quotes.waitForLog((l) => l.msg === "X.509 SVID received", "SVID again", {
      from: fromLine,
    });
    assert.equal(tableRows(await getPage(webPort)).length, 11);
  });
});

/** An in-process quotes server that misbehaves on request. */
class TestQuotesServer {
  body: string | Buffer = "[]";
  status = 200;
  /** Never answer (to exercise the webapp's timeout). */
  hang = false;
  /**
   * Close the connection under the next request, without a byte of response (as when a
   * server closes its idle kept-alive connections while a request is on its way), after
   * this many ms (0: at once). Applies once.
   */
  closeNextRequestAfterMs: number | undefined;
  /** Send the headers and part of the body, then close the connection. */
  breakMidBody = false;
  requests = 0;
  /** TCP connections accepted. */
  connections = 0;
  readonly #server: ReturnType<typeof createMtlsHttpsServer>;

  constructor(federation: Federation, svid: X509Svid, authorizedId = WEBAPP_ID) {
    this.#server = createMtlsHttpsServer(
      {
        svidSource: { getX509Svid: () => svid },
        bundleSource: new X509BundleSet([
          federation.brokerCa.bundle(),
          federation.stocksCa.bundle(),
        ]),
        authorizer: authorizeID(parseSpiffeId(authorizedId)),
      },
      (req, res) => {
        this.requests += 1;
        const closeAfterMs = this.closeNextRequestAfterMs;
        if (closeAfterMs !== undefined) {
          this.closeNextRequestAfterMs = undefined;
          setTimeout(() => req.socket.destroy(), closeAfterMs);
          return;
        }
        if (this.hang) return;
        if (this.breakMidBody) {
          const body = Buffer.from(this.body);
          res.writeHead(200, {
            "content-type": "application/json",
            "content-length": String(body.length),
          });
          res.write(body.subarray(0, body.length >> 1), () => req.socket.destroy());
          return;
        }
        res.writeHead(this.status, { "content-type": "application/json" }).end(this.body);
      },
    );
    this.#server.on("connection", () => {
      this.connections += 1;
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) => {
      this.#server.listen(0, "127.0.0.1", () => {
        const address = this.#server.address();
        resolve(typeof address === "object" && address ? address.port : 0);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

const GOOD_QUOTE = {
  Symbol: "AAAA",
  Price: 50,
  Open: 49,
  Low: 48,
  High: 51,
  Close: 49.5,
  Time: new Date().toISOString(),
};

describe("broker-webapp against a misbehaving quotes server", { timeout: 120_000 }, () => {
  let federation: Federation;
  const servers: TestQuotesServer[] = [];
  const webapps: ServiceProcess[] = [];

  before(async () => {
    federation = await Federation.create();
    await federation.issueWebappSvid();
  });

  after(async () => {
    await Promise.all(webapps.map((w) => w.stop()));
    await Promise.all(servers.map((s) => s.close()));
    await federation?.stop();
  });

  async function serverAs(
    id: string,
    authorizedId = WEBAPP_ID,
  ): Promise<{ server: TestQuotesServer; port: number }> {
    const server = new TestQuotesServer(
      federation,
      (await federation.stocksCa.issue(id)).svid(),
      authorizedId,
    );
    servers.push(server);
    return { server, port: await server.listen() };
  }

  async function webappFor(port: number): Promise<number> {
    const webapp = startWebapp(federation, `https://127.0.0.1:${port}/quotes`);
    webapps.push(webapp);
    const webPort = await webapp.port();
    await webapp.waitForLog((l) => l.msg === "X.509 SVID received", "SVID received", {
      from: 0,
    });
    return webPort;
  }

  it("refuses a quotes server with the wrong SPIFFE ID and says so", async () => {
    const { server, port } = await serverAs("spiffe://stocksmarket.org/impostor");
    const webPort = await webappFor(port);
    const html = await getPage(webPort);
    assert.ok(
      html.includes(
        "Quotes service unavailable</strong>: mTLS refused: peer spiffe://stocksmarket.org/impostor is not the expected spiffe://stocksmarket.org/quotes-service",
      ),
      "names the impostor and the expected ID",
    );
    assert.equal(server.requests, 0, "no request reached the impostor");
    assert.equal(tableRows(html).length, 0);
    const report = await health(webPort);
    assert.equal(report.upstream.lastResult?.ok, false);
    assert.equal(
      report.upstream.lastResult?.reason,
      "mTLS refused: peer spiffe://stocksmarket.org/impostor is not the expected spiffe://stocksmarket.org/quotes-service",
    );
    assert.equal(report.upstream.retries, 0);
    assert.equal(server.connections, 1, "not tried again");
  });

  it("sends the request again on a new connection when the server closes a kept-alive one under it", async () => {
    const { server, port } = await serverAs(QUOTES_ID);
    server.body = JSON.stringify([GOOD_QUOTE]);
    const webPort = await webappFor(port);
    assert.equal(tableRows(await getPage(webPort)).length, 1);
    assert.deepEqual(
      [(await health(webPort)).upstream.tlsHandshakes, server.connections],
      [1, 1],
      "one kept-alive connection",
    );

    server.closeNextRequestAfterMs = 0;
    const html = await getPage(webPort);
    assert.doesNotMatch(html, /Quotes service unavailable/);
    assert.equal(tableRows(html).length, 1);
    const report = await health(webPort);
    assert.equal(report.upstream.retries, 1);
    assert.equal(report.upstream.tlsHandshakes, 2, "the second attempt on a new connection");
    assert.equal(server.connections, 2);
    assert.equal(server.requests, 3, "first load, the closed request, its retry");
  });

  it("keeps the 2 s limit for the whole call, the second attempt included", async () => {
    const { server, port } = await serverAs(QUOTES_ID);
    server.body = JSON.stringify([GOOD_QUOTE]);
    const webPort = await webappFor(port);
    assert.equal(tableRows(await getPage(webPort)).length, 1);

    // 1.2 s lost on the first attempt, then the second gets no answer.
    server.closeNextRequestAfterMs = 1200;
    server.hang = true;
    const started = Date.now();
    const html = await getPage(webPort);
    const elapsedMs = Date.now() - started;
    assert.match(html, /Quotes service unavailable<\/strong>: no answer within 2 s/);
    assert.equal((await health(webPort)).upstream.retries, 1);
    assert.ok(elapsedMs < 3000, `the call took ${elapsedMs} ms; a second 2 s limit would be 3.2 s`);
  });

  it("does not send the request again when the server refuses the webapp's identity", async () => {
    // The server closes the connection once it has refused the client's SVID: the same
    // "closed" failure as above, but on the connection this call opened.
    const { server, port } = await serverAs(QUOTES_ID, "spiffe://broker.org/someone-else");
    const webPort = await webappFor(port);
    const html = await getPage(webPort);
    assert.match(html, /Quotes service unavailable<\/strong>: connection to .* closed/);
    const report = await health(webPort);
    assert.equal(report.upstream.retries, 0);
    assert.equal(server.connections, 1, "no second connection");
    assert.equal(server.requests, 0);
  });

  it("does not send the request again once the response has started", async () => {
    const { server, port } = await serverAs(QUOTES_ID);
    server.body = JSON.stringify([GOOD_QUOTE, GOOD_QUOTE]);
    const webPort = await webappFor(port);
    assert.equal(tableRows(await getPage(webPort)).length, 2);

    server.breakMidBody = true;
    const html = await getPage(webPort);
    assert.match(html, /Quotes service unavailable/);
    assert.equal(tableRows(html).length, 2, "the last good quotes stay");
    assert.equal((await health(webPort)).upstream.retries, 0);
    assert.equal(server.requests, 2, "the broken request was not sent again");
  });

  it("refuses a quotes server whose chain does not verify, and one that does not speak TLS", async () => {
    // The right ID, but from a stranger's CA calling itself stocksmarket.org.
    const rogueCa = await TestCa.create("stocksmarket.org");
    const rogue = new TestQuotesServer(federation, (await rogueCa.issue(QUOTES_ID)).svid());
    servers.push(rogue);
    const roguePort = await rogue.listen();
    const html = await getPage(await webappFor(roguePort));
    assert.ok(
      html.includes(
        "Quotes service unavailable</strong>: mTLS refused: peer certificate for spiffe://stocksmarket.org/quotes-service does not chain to the X.509 bundle of stocksmarket.org ",
      ),
      "says the chain does not verify",
    );
    assert.equal(rogue.requests, 0, "no request reached the rogue server");

    // Answers in plain text; resume() reads (and drops) the ClientHello so the socket can close.
    const plain = createNetServer((socket) => socket.resume().end("HTTP/1.1 200 OK\r\n\r\n[]"));
    const plainPort = await new Promise<number>((resolve) =>
      plain.listen(0, "127.0.0.1", () => resolve((plain.address() as { port: number }).port)),
    );
    try {
      const page = await getPage(await webappFor(plainPort));
      assert.match(
        page,
        /Quotes service unavailable<\/strong>: TLS failure: .*wrong version number/,
      );
      assert.equal(tableRows(page).length, 0);
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it("renders markup from the quotes service as inert text, and reports each bad answer", async () => {
    const { server, port } = await serverAs(QUOTES_ID);
    const webPort = await webappFor(port);

    server.body = JSON.stringify([
      { ...GOOD_QUOTE, Symbol: "<script>alert(1)</script>" },
      { ...GOOD_QUOTE, Symbol: '"><img src=x onerror=alert(2)>' },
    ]);
    const html = await getPage(webPort);
    assert.equal(html.match(/<script/gi)?.length, 1, "only the page's own reload script");
    assert.doesNotMatch(html, /<img/i);
    assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert.deepEqual(
      tableRows(html).map((row) => row[0]),
      ["&lt;script&gt;alert(1)&lt;/script&gt;", "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"],
    );

    const cases: [string, () => void, RegExp][] = [
      [
        "non-200",
        () => {
          server.status = 503;
          server.body = "{}";
        },
        /HTTP status 503/,
      ],
      [
        "malformed JSON",
        () => {
          server.status = 200;
          server.body = "[{";
        },
        /not valid JSON/,
      ],
      [
        "wrong shape",
        () => {
          server.body = JSON.stringify([{ ...GOOD_QUOTE, Price: "1" }]);
        },
        /unexpected response: .*Price/,
      ],
      [
        "too large",
        () => {
          server.body = Buffer.alloc(300 * 1024, 32);
        },
        /too large/,
      ],
      [
        "no answer",
        () => {
          server.hang = true;
        },
        /no answer within 2 s/,
      ],
    ];
    for (const [name, misbehave, reason] of cases) {
      misbehave();
      const page = await getPage(webPort);
      assert.match(page, /Quotes service unavailable/, name);
      assert.match(page, reason, name);
      assert.equal(tableRows(page).length, 2, `${name}: the last good quotes stay`);
    }
    server.hang = false;
    server.body = JSON.stringify([GOOD_QUOTE]);
    assert.equal(tableRows(await getPage(webPort)).length, 1, "recovers");
  });
});

describe("waiting for an SVID", { timeout: 120_000 }, () => {
  let federation: Federation;
  const processes: ServiceProcess[] = [];

  before(async () => {
    federation = await Federation.create();
  });

  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await federation?.stop();
  });

  it("the webapp serves at once and explains; the quotes service waits; both come alive", async (t) => {
    const denied = "no identity issued";
    federation.brokerApi.failWith(PERMISSION_DENIED, denied);
    federation.stocksApi.failWith(PERMISSION_DENIED, denied);

    // The quotes service listens (on a port of its choosing) only once it has an SVID, but
    // the webapp needs its address now: give it a port this test holds, forwarded later.
    const forwarder = new TcpForwarder();
    t.after(() => forwarder.close());
    const frontPort = await forwarder.listen();

    assert.match(federation.stocksApi.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const quotes = startQuotesService(federation, ["--health-port", "0"]);
    processes.push(quotes);
    await quotes.waitForLog(
      (l) => l.msg === "waiting for an X.509 SVID" && l.socket === federation.stocksApi.address,
      "waiting for an X.509 SVID",
      { from: 0 },
    );
    // --health-port answers while the HTTPS port is not open yet.
    const healthLine = await quotes.waitForLog(
      (l) => l.msg === "health endpoint listening",
      "health endpoint listening",
      { from: 0 },
    );
    const quotesHealth = async () => {
      const response = await fetch(String(healthLine.url));
      assert.equal(response.status, 200);
      return (await response.json()) as { hasSvid: boolean; spiffeId: string | null };
    };
    assert.match(String(healthLine.url), /^http:\/\/127\.0\.0\.1:\d+\/healthz$/);
    assert.deepEqual(await quotesHealth(), {
      hasSvid: false,
      spiffeId: null,
      svidExpiresAt: null,
      refusedSvidUpdates: { count: 0, last: null },
    });
    await quotes.waitForLog((l) => /still waiting/.test(l.msg), "still waiting (with the reason)", {
      from: 0,
    });

    const webapp = startWebapp(federation, `https://127.0.0.1:${frontPort}/quotes`);
    processes.push(webapp);
    const webPort = await webapp.port();

    const waiting = await eventually(async () => {
      const html = await getPage(webPort);
      return /no registration entry matches this workload yet/.test(html) ? html : undefined;
    }, "the page to say why, in plain words");
    assert.match(waiting, /Waiting for an X\.509 SVID/);
    assert.ok(waiting.includes(federation.brokerApi.address), "names the socket");
    assert.ok(!waiting.includes(denied), "the agent's raw answer stays in the log");
    assert.match(waiting, /location\.reload/);
    assert.equal((await health(webPort)).hasSvid, false);
    assert.equal(
      quotes.logs.some((l) => /listening/.test(l.msg) && typeof l.port === "number"),
      false,
      "no HTTPS port without an SVID",
    );
    // Logged now and then, not in a hot loop.
    assert.ok(quotes.logs.filter((l) => /still waiting/.test(l.msg)).length < 10);

    federation.brokerApi.failWith(undefined);
    federation.stocksApi.failWith(undefined);
    await federation.issueWebappSvid();
    await federation.issueQuotesSvid();
    forwarder.target = await quotes.port(20_000);
    await eventually(
      async () => {
        const html = await getPage(webPort);
        return tableRows(html).length === 11 ? html : undefined;
      },
      "the page to show 11 quotes",
      15_000,
    );
    assert.equal((await health(webPort)).hasSvid, true);
    const alive = await quotesHealth();
    assert.equal(alive.hasSvid, true);
    assert.equal(alive.spiffeId, QUOTES_ID);
  });

  it("an SVID withdrawn by the agent is logged, and the page waits for a new one", async () => {
    const own = await Federation.create();
    try {
      await own.issueWebappSvid();
      const webapp = startWebapp(own, "https://127.0.0.1:1/quotes");
      processes.push(webapp);
      const webPort = await webapp.port();
      await webapp.waitForLog((l) => l.msg === "X.509 SVID received", "SVID received", {
        from: 0,
      });

      // The registration entry is deleted: PERMISSION_DENIED on the open stream.
      const from = webapp.mark();
      own.brokerApi.failWith(PERMISSION_DENIED, "entry deleted");
      const withdrawn = await webapp.waitForLog(
        (l) => l.msg === "X.509 SVID withdrawn",
        "X.509 SVID withdrawn",
        { from },
      );
      assert.equal(withdrawn.socket, own.brokerApi.address);
      const html = await getPage(webPort);
      assert.match(html, /Waiting for an X\.509 SVID/);
      assert.match(html, /no registration entry matches this workload yet/);
      assert.equal(tableRows(html).length, 0, "no quotes fetched without an SVID");
      assert.equal((await health(webPort)).hasSvid, false);

      // A new entry: the agent issues an SVID again.
      own.brokerApi.failWith(undefined);
      await own.issueWebappSvid();
      await webapp.waitForLog((l) => l.msg === "X.509 SVID received", "SVID received again", {
        from,
      });
      assert.equal((await health(webPort)).hasSvid, true);
      assert.doesNotMatch(await getPage(webPort), /Waiting for an X\.509 SVID/);
    } finally {
      await own.stop();
    }
  });
});

describe("command lines and start-up errors", { timeout: 120_000 }, () => {
  async function run(
    script: string,
    args: string[],
  ): Promise<{ code: number | null; stderr: string }> {
    const service = new Service("cli", script, args);
    const exit = await service.exited;
    return { code: exit.code, stderr: service.stderr };
  }

  it("bad flag values exit 2 with a message saying what is wrong", async () => {
    const cases: [string, string[], RegExp][] = [
      [QUOTES_MAIN, ["--port", "http"], /--port.*port number/s],
      [
        QUOTES_MAIN,
        ["--authorized-id", "spiffe://Broker.org/webapp"],
        /--authorized-id.*invalid SPIFFE ID/s,
      ],
      [QUOTES_MAIN, ["--socket", "/tmp/agent.sock"], /--socket/],
      [QUOTES_MAIN, ["--log-level", "loud"], /--log-level.*Allowed choices/s],
      [WEBAPP_MAIN, ["--quotes-url", "http://x:8090/quotes"], /https:\/\//],
      [WEBAPP_MAIN, ["--quotes-id", "spiffe://stocksmarket.org"], /--quotes-id/],
      [WEBAPP_MAIN, ["--port", "70000"], /--port/],
      [WEBAPP_MAIN, ["--bogus"], /unknown option/],
    ];
    for (const [script, args, message] of cases) {
      const { code, stderr } = await run(script, args);
      assert.equal(code, 2, `${args.join(" ")}: exit code (stderr: ${stderr})`);
      assert.match(stderr, message, args.join(" "));
    }
  });

  it("--help lists the flags and exits 0", async () => {
    for (const [script, flags] of [
      [
        QUOTES_MAIN,
        ["--port", "--host", "--socket", "--authorized-id", "--log-level", "--health-port"],
      ],
      [WEBAPP_MAIN, ["--port", "--host", "--socket", "--quotes-url", "--quotes-id", "--log-level"]],
    ] as const) {
      const service = new Service("help", script, ["--help"]);
      let out = "";
      const exit = await service.exited;
      out = service.logs.map((l) => l.msg).join("\n");
      assert.equal(exit.code, 0);
      for (const flag of flags) assert.ok(out.includes(flag), `${script} --help mentions ${flag}`);
    }
  });

  it("SIGINT stops both services with exit code 0, even while they wait for an SVID", async () => {
    const federation = await Federation.create();
    try {
      const quotes = startQuotesService(federation);
      const webapp = startWebapp(federation, "https://127.0.0.1:1/quotes");
      await quotes.waitForLog((l) => l.msg === "waiting for an X.509 SVID", "waiting", {
        from: 0,
      });
      await webapp.port();
      assert.deepEqual(await quotes.stop("SIGINT"), { code: 0, signal: null });
      assert.deepEqual(await webapp.stop("SIGINT"), { code: 0, signal: null });
      assert.ok(webapp.logs.some((l) => l.msg === "shutting down" && l.reason === "SIGINT"));
    } finally {
      await federation.stop();
    }
  });

  it("a port in use is a clear error", async () => {
    const blocker = createNetServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, "127.0.0.1", () => resolve((blocker.address() as { port: number }).port)),
    );
    try {
      const federation = await Federation.create();
      try {
        const webapp = startWebapp(federation, "https://127.0.0.1:1/quotes", [
          "--port",
          String(port),
        ]);
        const exit = await webapp.exited;
        assert.equal(exit.code, 1);
        const fatal = webapp.logs.find((l) => l.level === 60);
        assert.equal(fatal?.msg, `port ${port} is in use: stop the other process or pass --port`);
      } finally {
        await federation.stop();
      }
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
