import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { connect } from "node:tls";
import {
  type ChannelOptions,
  Client,
  Server,
  type ServerUnaryCall,
  type ServiceError,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import { X509BundleSet } from "../bundle/x509bundle.js";
import { parseWorkloadId, TrustDomain } from "../spiffeid/spiffeid.js";
import { AuthorizationError, authorizeID, authorizeMemberOf } from "../spiffetls/authorize.js";
import { MtlsError } from "../spiffetls/errors.js";
import { type IssuedSvid, TestCa } from "../testing/ca.js";
import { FakeWorkloadApi, type FakeX509Response } from "../testing/fake-workload-api.js";
import { X509Source } from "../workloadapi/x509source.js";
import { VerificationError, type X509Svid, type X509SvidSource } from "../x509svid/index.js";
import {
  type GrpcMtlsClientConfig,
  type GrpcMtlsServerConfig,
  mtlsClientCredentials,
  mtlsServerCredentials,
  peerIdFromCall,
} from "./index.js";

const WEBAPP = "spiffe://broker.org/webapp";
const QUOTES = "spiffe://stocksmarket.org/quotes-service";
const BROKER_TD = "spiffe://broker.org";
const STOCKS_TD = "spiffe://stocksmarket.org";
const WHO_AM_I = "/demo.Peers/WhoAmI";
const bytes = (value: Buffer) => value;

/** Serves WhoAmI, which answers the caller's SPIFFE ID as the handler sees it. */
async function startServer(
  config: GrpcMtlsServerConfig,
): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.addService(
    {
      whoAmI: {
        path: WHO_AM_I,
        requestStream: false,
        responseStream: false,
        requestSerialize: bytes,
        requestDeserialize: bytes,
        responseSerialize: bytes,
        responseDeserialize: bytes,
      },
    },
    {
      whoAmI: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
        callback(null, Buffer.from(String(peerIdFromCall(call))));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", mtlsServerCredentials(config), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  return { server, port };
}

/** A client for WhoAmI; fast reconnects so that a test does not wait for grpc-js's backoff. */
function whoAmIClient(port: number, config: GrpcMtlsClientConfig): Client {
  const options: ChannelOptions = {
    "grpc.initial_reconnect_backoff_ms": 50,
    "grpc.max_reconnect_backoff_ms": 100,
  };
  return new Client(`127.0.0.1:${port}`, mtlsClientCredentials(config), options);
}

function whoAmI(client: Client): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      WHO_AM_I,
      bytes,
      bytes,
      Buffer.alloc(0),
      { deadline: Date.now() + 5000 },
      (error: ServiceError | null, reply?: Buffer) =>
        error ? reject(error) : resolve(String(reply)),
    );
  });
}

/** Waits until the channel has a connection (grpc-js reconnecting with its backoff). */
function waitForReady(client: Client): Promise<void> {
  return new Promise((resolve, reject) =>
    client.waitForReady(Date.now() + 5000, (error) => (error ? reject(error) : resolve())),
  );
}

/** One call on a fresh channel, closed afterwards. */
async function whoAmIOnce(port: number, config: GrpcMtlsClientConfig): Promise<string> {
  const client = whoAmIClient(port, config);
  try {
    return await whoAmI(client);
  } finally {
    client.close();
  }
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

function response(
  spiffeId: string,
  svid: IssuedSvid,
  bundleDer: Buffer,
  federated: Record<string, Buffer>,
): FakeX509Response {
  return {
    svids: [{ spiffeId, chainDer: svid.chainDer, keyDer: svid.keyDer, bundleDer }],
    federatedBundles: federated,
  };
}

describe("gRPC credentials with X509Sources following fake agents", { timeout: 60_000 }, () => {
  let brokerCa: TestCa;
  let stocksCa: TestCa;
  let brokerAgent: FakeWorkloadApi;
  let stocksAgent: FakeWorkloadApi;
  let webappSource: X509Source;
  let quotesSource: X509Source;
  let server: Server;
  let port: number;
  const serverRejected: Error[] = [];
  const presented: string[] = [];
  let quotesResponse: FakeX509Response;
  /** Changes what the stock market's agent serves. */
  const serveQuotes = (x509: FakeX509Response): void => {
    quotesResponse = x509;
    stocksAgent.setX509(x509);
  };

  const webappConfig = (): GrpcMtlsClientConfig => ({
    svidSource: webappSource,
    bundleSource: webappSource,
    authorizer: authorizeID(parseWorkloadId(QUOTES)),
    onPeerVerified: (_id, chain) => presented.push(chain[0]?.fingerprint256 ?? ""),
    trustChanges: webappSource,
  });

  before(async () => {
    brokerCa = await TestCa.create("broker.org");
    stocksCa = await TestCa.create("stocksmarket.org");
    brokerAgent = await FakeWorkloadApi.start();
    stocksAgent = await FakeWorkloadApi.start();
    brokerAgent.setX509(
      response(WEBAPP, await brokerCa.issue(WEBAPP), brokerCa.bundleDer(), {
        [STOCKS_TD]: stocksCa.bundleDer(),
      }),
    );
    serveQuotes(
      response(QUOTES, await stocksCa.issue(QUOTES), stocksCa.bundleDer(), {
        [BROKER_TD]: brokerCa.bundleDer(),
      }),
    );
    const backoff = { initialMs: 20, maxMs: 100 };
    webappSource = new X509Source({ address: brokerAgent.address, backoff });
    quotesSource = new X509Source({ address: stocksAgent.address, backoff });
    await Promise.all([webappSource.ready(), quotesSource.ready()]);
    ({ server, port } = await startServer({
      svidSource: quotesSource,
      bundleSource: quotesSource,
      authorizer: authorizeID(parseWorkloadId(WEBAPP)),
      onPeerRejected: (error) => serverRejected.push(error),
      trustChanges: quotesSource,
    }));
  });

  after(async () => {
    await stop(server);
    webappSource.close();
    quotesSource.close();
    await Promise.all([brokerAgent.stop(), stocksAgent.stop()]);
  });

  test("the handler sees the client's SPIFFE ID", async () => {
    assert.equal(await whoAmIOnce(port, webappConfig()), WEBAPP);
    assert.deepEqual(serverRejected, []);
  });

  test("calls keep working while both SVIDs rotate to a new stock market CA", async () => {
    const client = whoAmIClient(port, webappConfig());
    const failures: unknown[] = [];
    let calls = 0;
    let rotating = true;
    const loop = (async () => {
      while (rotating) {
        await whoAmI(client).then(
          () => calls++,
          (error: unknown) => failures.push(error),
        );
      }
    })();
    try {
      // The new CA is first published to the broker, then the service moves to it.
      const newStocksCa = await TestCa.create("stocksmarket.org");
      const bothStocksCas = Buffer.concat([stocksCa.bundleDer(), newStocksCa.bundleDer()]);
      const brokerUpdated = once(webappSource, "bundlesChanged");
      brokerAgent.setX509(
        response(WEBAPP, await brokerCa.issue(WEBAPP), brokerCa.bundleDer(), {
          [STOCKS_TD]: bothStocksCas,
        }),
      );
      await brokerUpdated;
      const rotated = await newStocksCa.issue(QUOTES);
      const quotesUpdated = once(quotesSource, "svidChanged");
      serveQuotes(response(QUOTES, rotated, bothStocksCas, { [BROKER_TD]: brokerCa.bundleDer() }));
      await quotesUpdated;
      // A new connection is served with the new SVID, straight away.
      assert.equal(await whoAmIOnce(port, webappConfig()), WEBAPP);
      assert.equal(presented.at(-1), rotated.certificates[0]?.fingerprint256);
    } finally {
      rotating = false;
      await loop;
      client.close();
    }
    assert.deepEqual(failures, []);
    assert.ok(calls > 0, "calls were made during the rotation");
  });

  test("an open connection is dropped when the client's trust domain leaves the bundles", async () => {
    const client = whoAmIClient(port, webappConfig());
    try {
      assert.equal(await whoAmI(client), WEBAPP);
      const federated = quotesResponse;
      const removed = once(quotesSource, "bundlesChanged");
      serveQuotes({ ...federated, federatedBundles: {} });
      await removed;
      const dropped = serverRejected.at(-1);
      assert.ok(dropped instanceof VerificationError, String(dropped));
      assert.equal(dropped.code, "no-bundle");
      // The same channel reconnects, and is refused under the new bundles.
      await assert.rejects(
        whoAmI(client),
        (error: ServiceError) => error.code === status.UNAVAILABLE,
      );

      const restored = once(quotesSource, "bundlesChanged");
      serveQuotes(federated);
      await restored;
      await waitForReady(client);
      assert.equal(await whoAmI(client), WEBAPP);
    } finally {
      client.close();
    }
  });

  test("an open connection is dropped when the server's trust domain leaves the bundles", async () => {
    const clientRejected: Error[] = [];
    const client = whoAmIClient(port, {
      ...webappConfig(),
      onPeerRejected: (error) => clientRejected.push(error),
    });
    try {
      assert.equal(await whoAmI(client), WEBAPP);
      const webapp = await brokerCa.issue(WEBAPP);
      const removed = once(webappSource, "bundlesChanged");
      brokerAgent.setX509(response(WEBAPP, webapp, brokerCa.bundleDer(), {}));
      await removed;
      assert.ok(clientRejected[0] instanceof VerificationError, String(clientRejected[0]));
      assert.equal(clientRejected[0].code, "no-bundle");
      await assert.rejects(
        whoAmI(client),
        (error: ServiceError) => error.code === status.UNAVAILABLE,
      );
    } finally {
      client.close();
    }
  });
});

/** An SVID source a test can set or empty at will. */
class MutableSvidSource implements X509SvidSource {
  svid: X509Svid | undefined;
  constructor(svid?: X509Svid) {
    this.svid = svid;
  }
  getX509Svid(): X509Svid | undefined {
    return this.svid;
  }
}

describe("gRPC credentials refuse peers during the handshake", { timeout: 60_000 }, () => {
  let brokerCa: TestCa;
  let stocksCa: TestCa;
  let otherCa: TestCa;
  let bundles: X509BundleSet;
  let webappSvid: X509Svid;
  let quotesSvid: X509Svid;

  before(async () => {
    [brokerCa, stocksCa, otherCa] = await Promise.all([
      TestCa.create("broker.org"),
      TestCa.create("stocksmarket.org"),
      TestCa.create("other.org"),
    ]);
    bundles = new X509BundleSet([brokerCa.bundle(), stocksCa.bundle(), otherCa.bundle()]);
    webappSvid = (await brokerCa.issue(WEBAPP)).svid();
    quotesSvid = (await stocksCa.issue(QUOTES)).svid();
  });

  /** Runs `body` against a quotes server that accepts only broker.org clients. */
  async function withQuotesServer(
    body: (port: number, rejected: Error[], accepted: string[]) => Promise<void>,
    svidSource: X509SvidSource = new MutableSvidSource(quotesSvid),
  ): Promise<void> {
    const rejected: Error[] = [];
    const accepted: string[] = [];
    const { server, port } = await startServer({
      svidSource,
      bundleSource: bundles,
      authorizer: authorizeMemberOf(TrustDomain.parse("broker.org")),
      onPeerRejected: (error) => rejected.push(error),
      onPeerAccepted: (id) => accepted.push(String(id)),
    });
    try {
      await body(port, rejected, accepted);
    } finally {
      // Not tryShutdown: Node's HTTP/2 server keeps a connection that offered no ALPN
      // half-open for up to 10 s after refusing it, and a graceful close would wait.
      server.forceShutdown();
    }
  }

  const clientOf = (svid: X509Svid, clientRejected: Error[] = []): GrpcMtlsClientConfig => ({
    svidSource: new MutableSvidSource(svid),
    bundleSource: bundles,
    authorizer: authorizeID(parseWorkloadId(QUOTES)),
    onPeerRejected: (error) => clientRejected.push(error),
  });

  async function assertUnavailable(call: Promise<string>): Promise<void> {
    await assert.rejects(call, (error: ServiceError) => error.code === status.UNAVAILABLE);
  }

  test("a client from another trust domain is refused with 'unauthorized'", async () => {
    const intruder = (await otherCa.issue("spiffe://other.org/webapp")).svid();
    await withQuotesServer(async (port, rejected, accepted) => {
      await assertUnavailable(whoAmIOnce(port, clientOf(intruder)));
      assert.ok(rejected[0] instanceof AuthorizationError);
      assert.equal(rejected[0].code, "unauthorized");
      assert.equal(String(rejected[0].peerId), "spiffe://other.org/webapp");
      assert.deepEqual(accepted, []);
      // A broker.org client still gets through on the same server.
      assert.equal(await whoAmIOnce(port, clientOf(webappSvid)), WEBAPP);
      assert.deepEqual(accepted, [WEBAPP]);
    });
  });

  test("a client with a forged chain is refused with 'untrusted'", async () => {
    const stranger = await TestCa.create("broker.org");
    const forged = (await stranger.issue(WEBAPP)).svid();
    await withQuotesServer(async (port, rejected) => {
      await assertUnavailable(whoAmIOnce(port, clientOf(forged)));
      assert.ok(rejected[0] instanceof VerificationError, String(rejected[0]));
      assert.equal(rejected[0].code, "untrusted");
    });
  });

  test("a client without a certificate is refused with 'no-peer-certificate'", async () => {
    await withQuotesServer(async (port, rejected) => {
      const anonymous = connect({
        host: "127.0.0.1",
        port,
        ALPNProtocols: ["h2"],
        rejectUnauthorized: false,
      });
      anonymous.on("error", () => {});
      await new Promise((resolve) => anonymous.once("close", resolve));
      assert.ok(rejected[0] instanceof MtlsError);
      assert.equal(rejected[0].code, "no-peer-certificate");
    });
  });

  test("a client offering no h2 in ALPN never reaches gRPC, however good its SVID", async () => {
    await withQuotesServer(async (port, rejected, accepted) => {
      // No ALPN: Node's HTTP/2 server answers with its own plain-text 403 and closes, before
      // our check would run. ALPN without h2: our ALPN callback refuses the handshake.
      for (const [ALPNProtocols, expected] of [
        [undefined, /^HTTP\/1\.0 403 Forbidden\r\n/],
        [["http/1.1"], /^$/],
      ] as const) {
        const socket = connect({
          host: "127.0.0.1",
          port,
          ALPNProtocols: ALPNProtocols ? [...ALPNProtocols] : undefined,
          cert: webappSvid.certificatesPem(),
          key: webappSvid.privateKeyPem(),
          rejectUnauthorized: false,
        });
        let received = "";
        socket.on("data", (chunk: Buffer) => {
          received += chunk.toString("latin1");
        });
        // An HTTP/2 client preface, which must never get an HTTP/2 answer.
        socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        // Not events.once: the refused handshake emits "error" first.
        socket.on("error", () => {});
        await new Promise((resolve) => socket.once("close", resolve));
        assert.match(received, expected, `ALPN ${ALPNProtocols}`);
      }
      assert.deepEqual(accepted, []);
      assert.deepEqual(rejected, []);
    });
  });

  test("the client refuses a server that its authorizer does not accept", async () => {
    const impostor = (await otherCa.issue("spiffe://other.org/quotes-service")).svid();
    await withQuotesServer(async (port) => {
      const clientRejected: Error[] = [];
      const call = whoAmIOnce(port, clientOf(webappSvid, clientRejected));
      await assert.rejects(
        call,
        (error: ServiceError) =>
          error.code === status.UNAVAILABLE && error.details.includes("is not the expected"),
      );
      assert.ok(clientRejected[0] instanceof AuthorizationError);
      assert.equal(clientRejected[0].code, "unauthorized");
      assert.equal(String(clientRejected[0].peerId), "spiffe://other.org/quotes-service");
    }, new MutableSvidSource(impostor));
  });

  test("a server with no SVID yet refuses handshakes, then serves once it has one", async () => {
    const source = new MutableSvidSource();
    await withQuotesServer(async (port, rejected) => {
      await assertUnavailable(whoAmIOnce(port, clientOf(webappSvid)));
      assert.ok(rejected[0] instanceof MtlsError);
      assert.equal(rejected[0].code, "no-svid");
      source.svid = quotesSvid;
      // The first handshake after the SVID arrives installs it; grpc-js reconnects.
      const client = whoAmIClient(port, clientOf(webappSvid));
      try {
        await waitForReady(client);
        assert.equal(await whoAmI(client), WEBAPP);
      } finally {
        client.close();
      }
    }, source);
  });
});
