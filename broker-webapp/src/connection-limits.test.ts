// The quotes service's connection limits (--idle-timeout, --handshake-timeout,
// --max-connections), on the real process against a fake Workload API, with the webapp's
// own pooling client alongside. Nothing here asserts how long anything took: each test
// waits for the server to act and then checks what it did.
import assert from "node:assert/strict";
import { connect as connectTcp, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { parseWorkloadId, X509Source } from "spiffe-node";
import {
  Federation,
  QUOTES_ID,
  type ServiceProcess,
  startQuotesService,
  WEBAPP_ID,
} from "./services-test-support.js";
import { QuotesClient } from "./upstream.js";

/** Kept above undici's 2 s margin, so the pooling client still reuses its connection. */
const IDLE_TIMEOUT_SECONDS = "3";
const MAX_CONNECTIONS = 4;

interface Credentials {
  cert: string;
  key: string;
}

/** Resolves once `socket` has closed, however that happened. */
function closed(socket: Socket): Promise<void> {
  // A paused socket never reads the server's end of the connection, and so never closes.
  socket.resume();
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

/** The server closed a connection before its TLS handshake: it turned it away. */
class TurnedAway extends Error {
  override name = "TurnedAway";
}

/**
 * What the tutorial's original webapp does per page load: a new mTLS connection, one GET,
 * and the socket left open. Resolves with the open socket once the answer has arrived;
 * rejects with TurnedAway if the server closed it before the handshake.
 */
function neverClosingLoad(port: number, credentials: Credentials): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({
      host: "127.0.0.1",
      port,
      ...credentials,
      rejectUnauthorized: false,
    });
    let secured = false;
    let answer = "";
    socket.setEncoding("utf8");
    socket.once("secureConnect", () => {
      secured = true;
      socket.write(`GET /quotes HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    });
    socket.on("data", (chunk: string) => {
      answer += chunk;
      if (answer.includes("\r\n\r\n[")) resolve(socket);
    });
    const fail = (error?: Error) =>
      reject(
        secured ? (error ?? new Error(`closed before an answer: ${answer}`)) : new TurnedAway(),
      );
    socket.once("error", fail);
    socket.once("close", () => fail());
  });
}

/** Calls `fetchQuotes` back to back until `stop()`, counting the calls that failed. */
function keepCalling(client: QuotesClient): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  const failed: string[] = [];
  let ok = 0;
  const loop = (async () => {
    while (running) {
      try {
        await client.fetchQuotes();
        ok += 1;
      } catch (error) {
        failed.push((error as Error).message);
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

describe("the quotes service's connection limits", { timeout: 60_000 }, () => {
  let federation: Federation;
  let quotes: ServiceProcess;
  let port: number;
  let source: X509Source;
  let client: QuotesClient;
  let credentials: Credentials;

  before(async () => {
    federation = await Federation.create();
    await federation.issueWebappSvid();
    await federation.issueQuotesSvid();
    const svid = (await federation.brokerCa.issue(WEBAPP_ID)).svid();
    credentials = { cert: svid.certificatesPem(), key: svid.privateKeyPem() };
    quotes = startQuotesService(federation, [
      "--idle-timeout",
      IDLE_TIMEOUT_SECONDS,
      "--handshake-timeout",
      "1",
      "--max-connections",
      String(MAX_CONNECTIONS),
    ]);
    port = await quotes.port();
    source = new X509Source({ address: federation.brokerApi.address });
    await source.ready();
    client = new QuotesClient({
      url: new URL(`https://127.0.0.1:${port}/quotes`),
      quotesId: parseWorkloadId(QUOTES_ID),
      svidSource: source,
      bundleSource: source,
    });
  });

  after(async () => {
    await client?.close();
    source?.close();
    const exit = await quotes?.stop();
    await federation?.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
  });

  it("closes a kept-alive connection left idle, and the pooling client reconnects", async () => {
    const calls = keepCalling(client);
    const idle = await neverClosingLoad(port, credentials);
    // Only the server can end it: this side never calls end() or destroy().
    await closed(idle);
    const { ok, failed } = await calls.stop();
    assert.deepEqual(failed, []);
    assert.ok(ok > 0);

    // The pooling client's own connection, left idle, goes the same way; its next call
    // opens a new one.
    const handshakes = client.handshakes;
    await new Promise((resolve) => setTimeout(resolve, Number(IDLE_TIMEOUT_SECONDS) * 1000 + 500));
    assert.equal((await client.fetchQuotes()).length, 11);
    assert.equal(client.handshakes, handshakes + 1);
  });

  it("closes a connection that never finishes its handshake, or never sends a request", async () => {
    const from = quotes.mark();
    const silentTcp = connectTcp({ host: "127.0.0.1", port });
    silentTcp.on("error", () => {});
    const silentTls = connectTls({
      host: "127.0.0.1",
      port,
      ...credentials,
      rejectUnauthorized: false,
    });
    silentTls.on("error", () => {});
    let secured = false;
    silentTls.once("secureConnect", () => {
      secured = true;
    });
    await Promise.all([closed(silentTcp), closed(silentTls)]);
    assert.ok(secured, "the TLS one was set up, and then closed for sending no request");
    assert.deepEqual(
      quotes.logs.slice(from).filter((l) => l.msg.startsWith("connection refused")),
      [],
    );
  });

  it("refuses connections past --max-connections with a log line, and the pooling client goes on", async () => {
    const calls = keepCalling(client);
    // Let the pooling client hold its connection, then fill the rest until one is refused.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const from = quotes.mark();
    const held: TLSSocket[] = [];
    for (;;) {
      const socket = await neverClosingLoad(port, credentials).catch((error: Error) => error);
      if (socket instanceof Error) {
        assert.ok(socket instanceof TurnedAway, `refused, not failed: ${socket.message}`);
        break;
      }
      held.push(socket);
      assert.ok(held.length < MAX_CONNECTIONS, "the pooling client holds one connection too");
    }
    const line = await quotes.waitForLog(
      (l) => l.msg.startsWith("connection refused"),
      "connection refused",
      { from },
    );
    assert.equal(
      line.msg,
      `connection refused: ${MAX_CONNECTIONS} connections are open, the limit (--max-connections)`,
    );
    assert.equal(line.maxConnections, MAX_CONNECTIONS);

    // Once the idle ones are closed, there is room again.
    await Promise.all(held.map(closed));
    (await neverClosingLoad(port, credentials)).destroy();

    const { ok, failed } = await calls.stop();
    assert.deepEqual(failed, [], "every call of the pooling client was answered");
    assert.ok(ok > 0);
  });
});
