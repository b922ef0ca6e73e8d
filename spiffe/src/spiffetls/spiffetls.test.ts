import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { before, describe, test } from "node:test";
import * as tls from "node:tls";
import { type Agent, request, Agent as UndiciAgent } from "undici";
import { type X509Bundle, X509BundleSet, type X509BundleSource } from "../bundle/x509bundle.js";
import { parseWorkloadId, type SpiffeId, type TrustDomain } from "../spiffeid/spiffeid.js";
import { type IssuedSvid, TestCa } from "../testing/ca.js";
import { VerificationError, X509Svid, type X509SvidSource } from "../x509svid/index.js";
import { AuthorizationError, authorizeAny, authorizeID } from "./authorize.js";
import {
  connectMtls,
  createMtlsAgent,
  createMtlsHttpsServer,
  createMtlsTlsServer,
  type MtlsClientConfig,
  MtlsError,
  type MtlsHttpsServerConfig,
  mtlsConnector,
  peerIdOf,
} from "./index.js";

const WEBAPP = "spiffe://broker.org/webapp";
const QUOTES = "spiffe://stocksmarket.org/quotes-service";
// Parsed in the hook below, so a broken parser fails tests instead of crashing the file.
let webappId: SpiffeId;
let quotesId: SpiffeId;

/** An SVID source a test can rotate or empty at will. */
class MutableSvidSource implements X509SvidSource {
  svid: X509Svid | undefined;
  constructor(svid?: X509Svid) {
    this.svid = svid;
  }
  getX509Svid(): X509Svid | undefined {
    return this.svid;
  }
}

/** A bundle source whose set a test can replace (a federation relationship ending). */
class MutableBundleSource implements X509BundleSource {
  set: X509BundleSet;
  constructor(bundles: X509Bundle[]) {
    this.set = new X509BundleSet(bundles);
  }
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined {
    return this.set.getX509BundleForTrustDomain(trustDomain);
  }
}

/** What a server saw: accepted and rejected peers, requests that reached the handler. */
interface ServerLog {
  accepted: SpiffeId[];
  rejected: Error[];
  requests: number;
  handshakes: number;
}

interface Running {
  port: number;
  url: string;
  log: ServerLog;
}

let brokerCa: TestCa;
let stocksCa: TestCa;
let webapp: IssuedSvid;
let quotes: IssuedSvid;

before(async () => {
  webappId = parseWorkloadId(WEBAPP);
  quotesId = parseWorkloadId(QUOTES);
  brokerCa = await TestCa.create("broker.org");
  stocksCa = await TestCa.create("stocksmarket.org");
  webapp = await brokerCa.issue(WEBAPP);
  quotes = await stocksCa.issue(QUOTES);
});

function bothBundles(): X509BundleSet {
  return new X509BundleSet([brokerCa.bundle(), stocksCa.bundle()]);
}

async function listen(server: tls.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/**
 * A plain TLS server (not SPIFFE-aware, session tickets on as by default) presenting
 * `svid` and asking for a client certificate it does not check: the far end for testing
 * what our client does on its own.
 */
function plainTlsServer(svid: X509Svid, onSocket: (socket: tls.TLSSocket) => void): tls.Server {
  return tls.createServer(
    {
      cert: svid.certificatesPem(),
      key: svid.privateKeyPem(),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket) => {
      socket.on("error", () => {});
      onSocket(socket);
    },
  );
}

/** Closes the server and every connection still open, when the test ends. */
function closeAtEnd(t: { after: (fn: () => Promise<void>) => void }, server: tls.Server): void {
  t.after(async () => {
    const closed = once(server, "close");
    server.close();
    if ("closeAllConnections" in server && typeof server.closeAllConnections === "function") {
      server.closeAllConnections();
    }
    await closed;
  });
}

function newLog(): ServerLog {
  return { accepted: [], rejected: [], requests: 0, handshakes: 0 };
}

/**
 * An HTTPS mTLS server answering every request with the client's SPIFFE ID and the
 * SHA-256 fingerprint of the leaf it presented.
 */
async function startHttpsServer(
  t: { after: (fn: () => Promise<void>) => void },
  options: Partial<MtlsHttpsServerConfig> & { closeEachConnection?: boolean } = {},
): Promise<Running> {
  const log = newLog();
  const config: MtlsHttpsServerConfig = {
    svidSource: new MutableSvidSource(quotes.svid()),
    bundleSource: bothBundles(),
    authorizer: authorizeID(webappId),
    onPeerAccepted: (id) => log.accepted.push(id),
    onPeerRejected: (error) => log.rejected.push(error),
    ...options,
  };
  const server = createMtlsHttpsServer(config, (req: IncomingMessage, res: ServerResponse) => {
    log.requests++;
    const tlsSocket = req.socket as tls.TLSSocket;
    if (options.closeEachConnection) res.setHeader("connection", "close");
    res.end(
      JSON.stringify({
        peer: peerIdOf(req)?.toString(),
        leaf: tlsSocket.getPeerX509Certificate()?.fingerprint256,
      }),
    );
  });
  server.on("secureConnection", () => log.handshakes++);
  closeAtEnd(t, server);
  const port = await listen(server);
  return { port, url: `https://127.0.0.1:${port}/`, log };
}

function clientConfig(overrides: Partial<MtlsClientConfig> = {}): MtlsClientConfig {
  return {
    svidSource: new MutableSvidSource(webapp.svid()),
    bundleSource: bothBundles(),
    authorizer: authorizeID(quotesId),
    ...overrides,
  };
}

function agentFor(
  t: { after: (fn: () => Promise<void>) => void },
  config: MtlsClientConfig,
): Agent {
  const agent = createMtlsAgent(config);
  t.after(() => agent.close());
  return agent;
}

async function getJson(url: string, dispatcher: Agent): Promise<{ peer?: string; leaf?: string }> {
  const response = await request(url, { dispatcher });
  assert.equal(response.statusCode, 200);
  return (await response.body.json()) as { peer?: string; leaf?: string };
}

/** The error a failed undici request carries: the connector's error, possibly wrapped. */
async function requestError(url: string, dispatcher: Agent): Promise<Error> {
  try {
    const response = await request(url, { dispatcher });
    await response.body.text();
  } catch (error) {
    assert.ok(error instanceof Error);
    return error;
  }
  assert.fail("the request succeeded but should have been refused");
}

/**
 * A plain (non-SPIFFE) TLS client: optionally presents `svid`, sends an HTTP request as
 * soon as its handshake completes, and collects whatever the server sends back.
 */
async function rawClient(
  port: number,
  svid?: X509Svid,
  session?: Buffer,
): Promise<{ received: string; sessionReused: boolean; sessions: Buffer[] }> {
  const socket = tls.connect({
    host: "127.0.0.1",
    port,
    rejectUnauthorized: false,
    ...(svid ? { cert: svid.certificatesPem(), key: svid.privateKeyPem() } : {}),
    ...(session ? { session } : {}),
  });
  let received = "";
  let sessionReused = false;
  const sessions: Buffer[] = [];
  socket.on("session", (s: Buffer) => sessions.push(s));
  socket.on("secureConnect", () => {
    sessionReused = socket.isSessionReused();
    socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  });
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString();
    // An accepted connection gets its response: close like a client done with it.
    if (received.includes("\r\n\r\n{")) socket.end();
  });
  socket.on("error", () => {});
  await once(socket, "close");
  return { received, sessionReused, sessions };
}

function expectVerificationError(error: unknown, code: string): void {
  const cause = error instanceof VerificationError ? error : (error as Error).cause;
  assert.ok(cause instanceof VerificationError, `expected a VerificationError, got ${error}`);
  assert.equal(cause.code, code);
}

/** undici may hand back the connector's error itself or wrap it; accept either. */
function rootCause(error: Error): unknown {
  return error instanceof AuthorizationError ||
    error instanceof VerificationError ||
    error instanceof MtlsError
    ? error
    : error.cause;
}

describe("SPIFFE mTLS between broker.org and stocksmarket.org", () => {
  test("accepts authorized peers; each side sees the other's SPIFFE ID", async (t) => {
    const { url, log } = await startHttpsServer(t);
    const verified: SpiffeId[] = [];
    const agent = agentFor(t, clientConfig({ onPeerVerified: (id) => verified.push(id) }));

    const body = await getJson(url, agent);

    assert.equal(body.peer, WEBAPP);
    assert.equal(body.leaf, webapp.certificates[0]?.fingerprint256);
    assert.deepEqual(log.accepted.map(String), [WEBAPP]);
    assert.deepEqual(verified.map(String), [QUOTES]);
    assert.deepEqual(log.rejected, []);
  });

  test("raw TLS server and connectMtls: peerIdOf on both ends", async (t) => {
    const seen: (string | undefined)[] = [];
    const server = createMtlsTlsServer(
      {
        svidSource: new MutableSvidSource(quotes.svid()),
        bundleSource: bothBundles(),
        authorizer: authorizeID(webappId),
      },
      (socket) => {
        seen.push(peerIdOf(socket)?.toString());
        socket.end("hello");
      },
    );
    closeAtEnd(t, server);
    const port = await listen(server);

    const socket = await connectMtls(clientConfig(), { host: "127.0.0.1", port });
    assert.equal(peerIdOf(socket)?.toString(), QUOTES);
    let received = "";
    for await (const chunk of socket) received += String(chunk);

    assert.equal(received, "hello");
    assert.deepEqual(seen, [WEBAPP]);
  });

  test("leaf + intermediate chains are sent whole and verified on both sides", async (t) => {
    const brokerIntermediate = await brokerCa.createIntermediate();
    const stocksIntermediate = await stocksCa.createIntermediate();
    const clientSvid = await brokerIntermediate.issue(WEBAPP);
    const serverSvid = await stocksIntermediate.issue(QUOTES);
    assert.equal(clientSvid.certificates.length, 2);

    const { url, log } = await startHttpsServer(t, {
      svidSource: new MutableSvidSource(serverSvid.svid()),
    });
    const agent = agentFor(
      t,
      clientConfig({ svidSource: new MutableSvidSource(clientSvid.svid()) }),
    );
    assert.equal((await getJson(url, agent)).peer, WEBAPP);

    // The same leaf without its intermediate does not verify: the server did use the
    // intermediate the client sent.
    const leafOnly = clientSvid.svid();
    const truncated = new X509Svid(
      leafOnly.id,
      leafOnly.certificates.slice(0, 1),
      leafOnly.privateKey,
    );
    const lonelyAgent = agentFor(t, clientConfig({ svidSource: new MutableSvidSource(truncated) }));
    await requestError(url, lonelyAgent);
    assert.equal(log.rejected.length, 1);
    expectVerificationError(log.rejected[0], "untrusted");
  });

  test("authorizers on both sides get the peer's ID and its verified path", async (t) => {
    const brokerIntermediate = await brokerCa.createIntermediate();
    const clientSvid = await brokerIntermediate.issue(WEBAPP);
    const fingerprints = (chain: readonly { fingerprint256: string }[]) =>
      chain.map((certificate) => certificate.fingerprint256);
    const seenByServer: string[][] = [];
    const seenByClient: string[][] = [];
    const verifiedByClient: string[][] = [];
    const { url } = await startHttpsServer(t, {
      authorizer: (peerId, chain) => {
        assert.equal(String(peerId), WEBAPP);
        seenByServer.push(fingerprints(chain));
      },
    });
    const agent = agentFor(
      t,
      clientConfig({
        svidSource: new MutableSvidSource(clientSvid.svid()),
        authorizer: (peerId, chain) => {
          assert.equal(String(peerId), QUOTES);
          seenByClient.push(fingerprints(chain));
        },
        onPeerVerified: (_, chain) => verifiedByClient.push(fingerprints(chain)),
      }),
    );
    assert.equal((await getJson(url, agent)).peer, WEBAPP);

    // Leaf, the intermediate it was sent with, and the bundle certificate at the top.
    assert.deepEqual(seenByServer, [
      fingerprints([...clientSvid.certificates, brokerCa.certificate]),
    ]);
    const serverPath = fingerprints([...quotes.certificates, stocksCa.certificate]);
    assert.deepEqual(seenByClient, [serverPath]);
    assert.deepEqual(verifiedByClient, [serverPath]);
  });

  test("EC and RSA SVIDs both work", async (t) => {
    const rsaStocks = await TestCa.create("stocksmarket.org", "rsa-2048");
    const rsaBroker = await TestCa.create("broker.org", "rsa-2048");
    const rsaQuotes = await rsaStocks.issue(QUOTES);
    const rsaWebapp = await rsaBroker.issue(WEBAPP);
    // RSA server with an EC client, then EC server with an RSA client.
    const pairs: [IssuedSvid, TestCa, IssuedSvid, TestCa][] = [
      [rsaQuotes, rsaStocks, webapp, brokerCa],
      [quotes, stocksCa, rsaWebapp, rsaBroker],
    ];
    for (const [serverSvid, serverCa, clientSvid, clientCa] of pairs) {
      const bundles = new X509BundleSet([serverCa.bundle(), clientCa.bundle()]);
      const { url } = await startHttpsServer(t, {
        svidSource: new MutableSvidSource(serverSvid.svid()),
        bundleSource: bundles,
      });
      const agent = agentFor(
        t,
        clientConfig({
          svidSource: new MutableSvidSource(clientSvid.svid()),
          bundleSource: bundles,
        }),
      );
      const body = await getJson(url, agent);
      assert.equal(body.peer, WEBAPP);
      assert.equal(body.leaf, clientSvid.certificates[0]?.fingerprint256);
    }
  });
});

describe("rejections", () => {
  test("server refuses a client its authorizer does not allow", async (t) => {
    const { url, log } = await startHttpsServer(t, {
      authorizer: authorizeID(parseWorkloadId("spiffe://broker.org/someone-else")),
    });
    await requestError(url, agentFor(t, clientConfig()));

    assert.equal(log.rejected.length, 1);
    const error = log.rejected[0];
    assert.ok(error instanceof AuthorizationError);
    assert.equal(error.peerId.toString(), WEBAPP);
    assert.equal(log.requests, 0);
  });

  test("client refuses a server its authorizer does not allow", async (t) => {
    const { url, log } = await startHttpsServer(t);
    const agent = agentFor(
      t,
      clientConfig({ authorizer: authorizeID(parseWorkloadId("spiffe://stocksmarket.org/other")) }),
    );
    const error = rootCause(await requestError(url, agent));
    assert.ok(error instanceof AuthorizationError, `got ${error}`);
    assert.equal(error.peerId.toString(), QUOTES);
    assert.equal(log.requests, 0);
  });

  test("server refuses a forged cross-domain chain (broker.org ID signed by stocksmarket.org)", async (t) => {
    const forged = await stocksCa.issue(WEBAPP);
    const { url, log } = await startHttpsServer(t);
    await requestError(
      url,
      agentFor(t, clientConfig({ svidSource: new MutableSvidSource(forged.svid()) })),
    );

    assert.equal(log.rejected.length, 1);
    expectVerificationError(log.rejected[0], "untrusted");
    assert.equal(log.requests, 0);
  });

  test("client refuses a forged cross-domain chain (stocksmarket.org ID signed by broker.org)", async (t) => {
    const forged = await brokerCa.issue(QUOTES);
    const { url } = await startHttpsServer(t, { svidSource: new MutableSvidSource(forged.svid()) });
    const error = rootCause(await requestError(url, agentFor(t, clientConfig())));
    expectVerificationError(error, "untrusted");
  });

  // Forged signatures: the certificate names the trusted CA (subject name and authority
  // key identifier) but another key signed it, so only the signature check refuses it.
  async function forgedSvids(ca: TestCa, id: string): Promise<[string, X509Svid][]> {
    const forger = await TestCa.create(ca.trustDomain);
    const forgedIntermediate = await ca.createIntermediate({ forgeSignatureWith: forger });
    return [
      ["forged leaf", (await ca.issue(id, { forgeSignatureWith: forger })).svid()],
      ["forged intermediate", (await forgedIntermediate.issue(id)).svid()],
    ];
  }

  test("server refuses a client whose leaf or intermediate has a forged signature", async (t) => {
    const { url, log } = await startHttpsServer(t);
    for (const [what, svid] of await forgedSvids(brokerCa, WEBAPP)) {
      const rejectedBefore = log.rejected.length;
      await requestError(
        url,
        agentFor(t, clientConfig({ svidSource: new MutableSvidSource(svid) })),
      );
      assert.equal(log.rejected.length, rejectedBefore + 1, what);
      expectVerificationError(log.rejected[rejectedBefore], "untrusted");
      assert.match(
        String(log.rejected[rejectedBefore]),
        /does not chain to the X\.509 bundle of broker\.org/,
        what,
      );
    }
    assert.equal(log.requests, 0);
    assert.deepEqual(log.accepted, []);
  });

  test("client refuses a server whose leaf or intermediate has a forged signature", async (t) => {
    for (const [what, svid] of await forgedSvids(stocksCa, QUOTES)) {
      const { url, port, log } = await startHttpsServer(t, {
        svidSource: new MutableSvidSource(svid),
      });
      const error = rootCause(await requestError(url, agentFor(t, clientConfig())));
      expectVerificationError(error, "untrusted");
      assert.match(String(error), /does not chain to the X\.509 bundle of stocksmarket\.org/, what);
      assert.equal(log.requests, 0, what);
      await assert.rejects(
        connectMtls(clientConfig(), { host: "127.0.0.1", port }),
        (thrown: unknown) => {
          expectVerificationError(thrown, "untrusted");
          return true;
        },
      );
    }
  });

  test("server refuses a client that sends no certificate; it gets no data", async (t) => {
    const { port, log } = await startHttpsServer(t);
    const { received } = await rawClient(port);

    assert.equal(received, "");
    assert.equal(log.requests, 0);
    assert.equal(log.rejected.length, 1);
    const error = log.rejected[0];
    assert.ok(error instanceof MtlsError);
    assert.equal(error.code, "no-peer-certificate");
    assert.equal(
      error.message,
      "the peer presented no certificate; SPIFFE mTLS requires an X.509-SVID on both sides",
    );
  });

  test("server reads at most 16 certificates of a chain, and refuses more than 10", async (t) => {
    let ca = brokerCa;
    for (let i = 0; i < 17; i++) ca = await ca.createIntermediate();
    const long = (await ca.issue(WEBAPP)).svid();
    assert.equal(long.certificates.length, 18);
    const { url, log } = await startHttpsServer(t);
    await requestError(url, agentFor(t, clientConfig({ svidSource: new MutableSvidSource(long) })));
    assert.equal(log.rejected.length, 1);
    expectVerificationError(log.rejected[0], "untrusted");
    assert.equal(
      log.rejected[0]?.message,
      "the peer sent 16 certificates; at most 10 are accepted",
    );
  });

  test("a peer from a trust domain without a bundle is refused, on either side", async (t) => {
    const evilCa = await TestCa.create("evil.example");
    const intruder = await evilCa.issue("spiffe://evil.example/webapp");
    const { url, log } = await startHttpsServer(t, { authorizer: authorizeAny() });
    await requestError(
      url,
      agentFor(t, clientConfig({ svidSource: new MutableSvidSource(intruder.svid()) })),
    );
    assert.equal(log.rejected.length, 1);
    expectVerificationError(log.rejected[0], "no-bundle");

    const impostor = await evilCa.issue("spiffe://evil.example/quotes-service");
    const other = await startHttpsServer(t, { svidSource: new MutableSvidSource(impostor.svid()) });
    const error = rootCause(
      await requestError(other.url, agentFor(t, clientConfig({ authorizer: authorizeAny() }))),
    );
    expectVerificationError(error, "no-bundle");
  });

  test("a rejected client receives no application data even if it sends a request", async (t) => {
    const stranger = await brokerCa.issue("spiffe://broker.org/stranger");
    const { port, log } = await startHttpsServer(t);
    const { received } = await rawClient(port, stranger.svid());

    assert.equal(received, "");
    assert.equal(log.requests, 0);
    assert.ok(log.rejected[0] instanceof AuthorizationError);

    // Control: the same raw client with an authorized SVID does get the response.
    const accepted = await rawClient(port, webapp.svid());
    assert.match(accepted.received, /^HTTP\/1\.1 200/);
  });

  test("a rejected server's data never reaches the client", async (t) => {
    // A server that is not SPIFFE-aware answers at once, before any request.
    const stranger = await stocksCa.issue("spiffe://stocksmarket.org/stranger");
    const chatty = plainTlsServer(stranger.svid(), (socket) => {
      socket.end("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret");
    });
    closeAtEnd(t, chatty);
    const port = await listen(chatty);

    const error = rootCause(
      await requestError(`https://127.0.0.1:${port}/`, agentFor(t, clientConfig())),
    );
    assert.ok(error instanceof AuthorizationError, `got ${error}`);
    await assert.rejects(
      connectMtls(clientConfig(), { host: "127.0.0.1", port }),
      AuthorizationError,
    );
  });

  test("undici's request rejects with an error naming the refused server", async (t) => {
    const { url } = await startHttpsServer(t);
    const agent = agentFor(
      t,
      clientConfig({ authorizer: authorizeID(parseWorkloadId("spiffe://stocksmarket.org/other")) }),
    );
    const error = await requestError(url, agent);
    assert.match(String(rootCause(error)), /spiffe:\/\/stocksmarket\.org\/quotes-service/);
  });
});

describe("our own SVID", () => {
  test("a server without an SVID refuses the handshake, then serves once one arrives", async (t) => {
    const svidSource = new MutableSvidSource(undefined);
    const { url, log } = await startHttpsServer(t, { svidSource });
    const agent = agentFor(t, clientConfig());

    await requestError(url, agent);
    assert.equal(log.rejected.length, 1);
    const error = log.rejected[0];
    assert.ok(error instanceof MtlsError);
    assert.equal(error.code, "no-svid");
    assert.equal(log.handshakes, 0);

    svidSource.svid = quotes.svid();
    assert.equal((await getJson(url, agent)).peer, WEBAPP);
  });

  test("a client without an SVID does not connect", async (t) => {
    const { port, log } = await startHttpsServer(t);
    const config = clientConfig({ svidSource: new MutableSvidSource(undefined) });
    await assert.rejects(connectMtls(config, { host: "127.0.0.1", port }), (error: unknown) => {
      assert.ok(error instanceof MtlsError);
      assert.equal(error.code, "no-svid");
      return true;
    });
    const error = rootCause(await requestError(`https://127.0.0.1:${port}/`, agentFor(t, config)));
    assert.ok(error instanceof MtlsError);
    assert.equal(log.handshakes + log.rejected.length, 0);
  });

  test("server: a rotated SVID is presented on the very next connection", async (t) => {
    const svidSource = new MutableSvidSource(quotes.svid());
    const { port } = await startHttpsServer(t, { svidSource });
    const presented = async (): Promise<string | undefined> => {
      const socket = await connectMtls(clientConfig(), { host: "127.0.0.1", port });
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
      socket.destroy();
      return fingerprint;
    };

    assert.equal(await presented(), quotes.certificates[0]?.fingerprint256);
    const rotated = await stocksCa.issue(QUOTES);
    svidSource.svid = rotated.svid();
    assert.equal(await presented(), rotated.certificates[0]?.fingerprint256);
  });

  test("server: an identical SVID in a new object does not rebuild the TLS context", async (t) => {
    const server = createMtlsTlsServer(
      {
        // A new X509Svid object on every call, always the same certificate and key.
        svidSource: { getX509Svid: () => quotes.svid() },
        bundleSource: bothBundles(),
        authorizer: authorizeAny(),
      },
      (socket) => socket.end(),
    );
    let installs = 0;
    const setSecureContext = server.setSecureContext.bind(server);
    server.setSecureContext = (options) => {
      installs++;
      setSecureContext(options);
    };
    closeAtEnd(t, server);
    const port = await listen(server);
    for (let i = 0; i < 3; i++) {
      (await connectMtls(clientConfig(), { host: "127.0.0.1", port })).destroy();
    }
    assert.equal(installs, 1);
  });

  test("client: a rotated SVID is presented on the next connection", async (t) => {
    const svidSource = new MutableSvidSource(webapp.svid());
    const { url } = await startHttpsServer(t, { closeEachConnection: true });
    const agent = agentFor(t, clientConfig({ svidSource }));

    assert.equal((await getJson(url, agent)).leaf, webapp.certificates[0]?.fingerprint256);
    const rotated = await brokerCa.issue(WEBAPP);
    svidSource.svid = rotated.svid();
    assert.equal((await getJson(url, agent)).leaf, rotated.certificates[0]?.fingerprint256);
  });
});

describe("connections and sessions", () => {
  test("an undici Agent reuses its authenticated connections", async (t) => {
    const { url, log } = await startHttpsServer(t);
    const verified: SpiffeId[] = [];
    const agent = agentFor(t, clientConfig({ onPeerVerified: (id) => verified.push(id) }));
    for (let i = 0; i < 10; i++) assert.equal((await getJson(url, agent)).peer, WEBAPP);

    assert.equal(log.requests, 10);
    // undici's pool may open a second socket when a request starts in the same tick as the
    // previous response ends (its stock connector does the same); never one per request.
    assert.ok(log.handshakes <= 2, `${log.handshakes} handshakes for 10 requests`);
    assert.equal(verified.length, log.handshakes);
  });

  test("an Agent limited to one connection makes exactly one handshake", async (t) => {
    const { url, log } = await startHttpsServer(t);
    const agent = createMtlsAgent(clientConfig(), { connections: 1 });
    t.after(() => agent.close());
    for (let i = 0; i < 5; i++) assert.equal((await getJson(url, agent)).peer, WEBAPP);

    assert.equal(log.requests, 5);
    assert.equal(log.handshakes, 1);
  });

  test("trustChanges: the server closes idle kept-alive connections when trust changes", async (t) => {
    const trustChanges = new EventEmitter();
    const { url, log } = await startHttpsServer(t, { trustChanges });
    const agent = createMtlsAgent(clientConfig(), { connections: 1 });
    t.after(() => agent.close());
    await getJson(url, agent);
    await getJson(url, agent);
    assert.equal(log.handshakes, 1, "the connection is kept alive");
    // Well before the server's 5 s keep-alive timeout would close it anyway.
    const disconnected = once(agent, "disconnect", { signal: AbortSignal.timeout(2000) });
    trustChanges.emit("bundlesChanged");
    await disconnected;
    await getJson(url, agent);
    assert.equal(log.handshakes, 2, "a new connection, verified again");
    assert.equal(trustChanges.listenerCount("bundlesChanged"), 1);
  });

  test("trustChanges: closing the server stops listening for changes", async () => {
    const trustChanges = new EventEmitter();
    const server = createMtlsHttpsServer({
      svidSource: new MutableSvidSource(quotes.svid()),
      bundleSource: bothBundles(),
      authorizer: authorizeID(webappId),
      trustChanges,
    });
    await listen(server);
    assert.equal(trustChanges.listenerCount("bundlesChanged"), 1);
    server.close();
    await once(server, "close");
    assert.equal(trustChanges.listenerCount("bundlesChanged"), 0);
  });

  test("server never resumes a session, and re-verifies under the trust in force", async (t) => {
    const bundleSource = new MutableBundleSource([brokerCa.bundle(), stocksCa.bundle()]);
    const resumed: boolean[] = [];
    const { port, log } = await startHttpsServer(t, {
      bundleSource,
      onPeerAccepted: (_id, socket) => resumed.push(socket.isSessionReused()),
    });

    const first = await rawClient(port, webapp.svid());
    assert.match(first.received, /^HTTP\/1\.1 200/);
    // The client holds a session it can offer: without the server's guard it would resume.
    const offered = first.sessions.at(-1);
    assert.ok(offered, "the server handed out no session; the test would prove nothing");

    const second = await rawClient(port, webapp.svid(), offered);
    assert.match(second.received, /^HTTP\/1\.1 200/);
    assert.equal(second.sessionReused, false);
    assert.deepEqual(resumed, [false, false]);

    // broker.org's bundle goes away: the same client, offering its session, is refused.
    bundleSource.set = new X509BundleSet([stocksCa.bundle()]);
    const third = await rawClient(port, webapp.svid(), offered);
    assert.equal(third.received, "");
    assert.equal(third.sessionReused, false);
    assert.equal(log.rejected.length, 1);
    expectVerificationError(log.rejected[0], "no-bundle");
  });

  test("server refuses TLS 1.2 renegotiation, which could swap the client's certificate", async (t) => {
    const { port, log } = await startHttpsServer(t);
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      rejectUnauthorized: false,
      maxVersion: "TLSv1.2",
      cert: webapp.svid().certificatesPem(),
      key: webapp.svid().privateKeyPem(),
    });
    await once(socket, "secureConnect");
    const outcome = new Promise<Error | null>((resolve) => {
      socket.on("error", resolve);
      socket.renegotiate({ rejectUnauthorized: false }, (error) => resolve(error));
    });
    const error = await outcome;
    assert.ok(error, "the server went along with a renegotiation");
    assert.match(error.message, /renegotiation/);
    socket.destroy();
    assert.deepEqual(log.accepted.map(String), [WEBAPP]);
  });

  test("client never offers a session for resumption (undici's own connector would)", async (t) => {
    // A plain TLS server that would resume sessions; it answers one request per connection.
    const reused: boolean[] = [];
    const server = plainTlsServer(quotes.svid(), (socket) => {
      reused.push(socket.isSessionReused());
      socket.once("data", () => {
        socket.end("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
      });
    });
    closeAtEnd(t, server);
    const port = await listen(server);
    const url = `https://127.0.0.1:${port}/`;
    const threeRequests = async (dispatcher: Agent) => {
      for (let i = 0; i < 3; i++) {
        const response = await request(url, { dispatcher });
        assert.equal(await response.body.text(), "ok");
      }
    };

    // Control: undici's own connector caches sessions, and this server resumes them.
    const plain = new UndiciAgent({ connect: { rejectUnauthorized: false } });
    t.after(() => plain.close());
    await threeRequests(plain);
    assert.equal(reused[0], false);
    assert.ok(reused.includes(true), "the control never resumed, so this test would prove nothing");

    reused.length = 0;
    await threeRequests(agentFor(t, clientConfig()));
    assert.deepEqual(reused, [false, false, false]);
  });

  test("SNI carries DNS names, never IP addresses", async (t) => {
    const servernames: (string | false)[] = [];
    const server = plainTlsServer(quotes.svid(), (socket) => {
      servernames.push((socket as tls.TLSSocket & { servername: string | false }).servername);
      socket.end();
    });
    closeAtEnd(t, server);
    const port = await listen(server);
    for (const host of ["127.0.0.1", "localhost"]) {
      const socket = await connectMtls(clientConfig(), { host, port });
      socket.resume();
      await once(socket, "close");
    }
    assert.deepEqual(servernames, [false, "localhost"]);
  });

  test("a server that never completes the handshake times out with a clear error", async (t) => {
    // Accepts TCP connections and then says nothing.
    const silent = net.createServer((socket) => socket.on("error", () => {}));
    t.after(() => {
      silent.close();
    });
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const { port } = silent.address() as AddressInfo;
    const config = clientConfig({ connectTimeoutMs: 200 });
    await assert.rejects(connectMtls(config, { host: "127.0.0.1", port }), (error: unknown) => {
      assert.ok(error instanceof MtlsError);
      assert.equal(error.code, "connect-timeout");
      assert.match(error.message, /within 200 ms/);
      return true;
    });
  });

  test("the connector refuses plain http origins", async () => {
    const connect = mtlsConnector(clientConfig());
    const error = await new Promise<Error | null>((resolve) => {
      connect({ hostname: "127.0.0.1", protocol: "http:", port: "80" }, (err, socket) => {
        socket?.destroy();
        resolve(err);
      });
    });
    assert.ok(error instanceof MtlsError);
    assert.equal(error.code, "unsupported-protocol");
  });
});
