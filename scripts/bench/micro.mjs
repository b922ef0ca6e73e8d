// The micro-benchmarks of `npm run bench`: how long the SPIFFE hot paths take on this machine.
// - verifyX509Svid for EC P-256 and RSA-2048 chains (leaf + intermediate);
// - parseAndValidateJwtSvid for ES256 and RS256 tokens (what the quotes service does per
//   request on the JWT road);
// - mTLS requests over one kept-alive undici Agent vs. a new Agent (a new TLS
//   handshake) per request, which is what the original Go webapp did per page load.
// It needs `npm run build` first and talks only to 127.0.0.1.
import { performance } from "node:perf_hooks";
import {
  authorizeID,
  createMtlsAgent,
  createMtlsHttpsServer,
  JwtBundle,
  JwtBundleSet,
  parseAndValidateJwtSvid,
  parseWorkloadId,
  TrustDomain,
  verifyX509Svid,
  X509BundleSet,
} from "spiffe-node";
import { TestCa, TestJwtKey } from "spiffe-node/testing";
import { request } from "undici";

const VERIFY_ROUNDS = 2_000;
const JWT_ROUNDS = 5_000;
const REQUEST_ROUNDS = 300;

function report(name, rounds, elapsedMs) {
  const perOp = elapsedMs / rounds;
  const perSecond = Math.round(1000 / perOp);
  console.log(
    `${name.padEnd(52)} ${perOp.toFixed(3).padStart(8)} ms/op ${String(perSecond).padStart(7)} op/s`,
  );
}

async function benchVerify(keyAlgorithm) {
  const root = await TestCa.create("stocksmarket.org", keyAlgorithm);
  const intermediate = await root.createIntermediate({ keyAlgorithm });
  const issued = await intermediate.issue("spiffe://stocksmarket.org/quotes-service", {
    keyAlgorithm,
  });
  const bundles = new X509BundleSet([root.bundle()]);
  verifyX509Svid(issued.certificates, bundles);
  const start = performance.now();
  for (let i = 0; i < VERIFY_ROUNDS; i += 1) verifyX509Svid(issued.certificates, bundles);
  report(
    `verifyX509Svid, ${keyAlgorithm}, leaf + intermediate`,
    VERIFY_ROUNDS,
    performance.now() - start,
  );
}

async function benchJwt(algorithm) {
  const key = TestJwtKey.generate(algorithm);
  const bundles = new JwtBundleSet([
    new JwtBundle(TrustDomain.parse("broker.org"), [key.authority()]),
  ]);
  const audience = "spiffe://stocksmarket.org/quotes-service";
  const token = key.issue("spiffe://broker.org/webapp", audience, 300);
  await parseAndValidateJwtSvid(token, bundles, audience);
  const start = performance.now();
  for (let i = 0; i < JWT_ROUNDS; i += 1) await parseAndValidateJwtSvid(token, bundles, audience);
  report(`parseAndValidateJwtSvid, ${algorithm}`, JWT_ROUNDS, performance.now() - start);
}

async function benchRequests() {
  const brokerCa = await TestCa.create("broker.org");
  const stocksCa = await TestCa.create("stocksmarket.org");
  const webapp = (await brokerCa.issue("spiffe://broker.org/webapp")).svid();
  const quotes = (await stocksCa.issue("spiffe://stocksmarket.org/quotes-service")).svid();
  const bundles = new X509BundleSet([brokerCa.bundle(), stocksCa.bundle()]);

  let handshakes = 0;
  const server = createMtlsHttpsServer(
    {
      svidSource: { getX509Svid: () => quotes },
      bundleSource: bundles,
      authorizer: authorizeID(parseWorkloadId("spiffe://broker.org/webapp")),
      onPeerAccepted: () => {
        handshakes += 1;
      },
    },
    (_req, res) => res.end("[]"),
  );
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `https://127.0.0.1:${server.address().port}/quotes`;
  const clientConfig = {
    svidSource: { getX509Svid: () => webapp },
    bundleSource: bundles,
    authorizer: authorizeID(parseWorkloadId("spiffe://stocksmarket.org/quotes-service")),
  };

  try {
    const shared = createMtlsAgent(clientConfig);
    await (await request(url, { dispatcher: shared })).body.text();
    handshakes = 0;
    let start = performance.now();
    for (let i = 0; i < REQUEST_ROUNDS; i += 1) {
      await (await request(url, { dispatcher: shared })).body.text();
    }
    report("mTLS request, one kept-alive Agent", REQUEST_ROUNDS, performance.now() - start);
    console.log(`  handshakes for ${REQUEST_ROUNDS} requests: ${handshakes}`);
    await shared.close();

    handshakes = 0;
    start = performance.now();
    for (let i = 0; i < REQUEST_ROUNDS; i += 1) {
      const fresh = createMtlsAgent(clientConfig);
      await (await request(url, { dispatcher: fresh })).body.text();
      await fresh.close();
    }
    report(
      "mTLS request, new Agent (new handshake) each time",
      REQUEST_ROUNDS,
      performance.now() - start,
    );
    console.log(`  handshakes for ${REQUEST_ROUNDS} requests: ${handshakes}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

export async function runMicroBenchmarks() {
  console.log(`Micro-benchmarks (node ${process.version}, ${process.platform}/${process.arch}):`);
  await benchVerify("ec-p256");
  await benchVerify("rsa-2048");
  await benchJwt("ES256");
  await benchJwt("RS256");
  await benchRequests();
}
