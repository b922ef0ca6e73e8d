import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { TLSSocket } from "node:tls";
import { Agent, request } from "undici";
import { X509BundleSet } from "../bundle/x509bundle.js";
import { parseWorkloadId } from "../spiffeid/spiffeid.js";
import { TestCa } from "../testing/ca.js";
import type { X509Svid } from "../x509svid/svid.js";
import { authorizeID } from "./authorize.js";
import { createTlsHttpsServer, tlsConnector } from "./index.js";

// TLS that authenticates only the server: the JWT road's transport.
describe("createTlsHttpsServer and tlsConnector", () => {
  let svid: X509Svid | undefined;
  let bundles: X509BundleSet;
  let impostorBundles: X509BundleSet;
  let url: string;
  const clientCertificates: unknown[] = [];
  const rejected: Error[] = [];
  const server = createTlsHttpsServer(
    { svidSource: { getX509Svid: () => svid }, onPeerRejected: (error) => rejected.push(error) },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      clientCertificates.push(socket.getPeerCertificate());
      res.end("ok");
    },
  );

  before(async () => {
    const stocks = await TestCa.create("stocksmarket.org");
    const impostor = await TestCa.create("stocksmarket.org");
    svid = (await stocks.issue("spiffe://stocksmarket.org/quotes-service")).svid();
    bundles = new X509BundleSet([stocks.bundle()]);
    impostorBundles = new X509BundleSet([impostor.bundle()]);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const agentFor = (set: X509BundleSet, id = "spiffe://stocksmarket.org/quotes-service") =>
    new Agent({
      connect: tlsConnector({ bundleSource: set, authorizer: authorizeID(parseWorkloadId(id)) }),
    });

  test("the client authenticates the server and presents no certificate", async () => {
    const agent = agentFor(bundles);
    const response = await request(url, { dispatcher: agent });
    assert.equal(await response.body.text(), "ok");
    await agent.close();
    assert.deepEqual(clientCertificates.at(-1), {}, "no client certificate");
  });

  test("the client refuses a server of another CA or with another ID", async () => {
    const impostor = agentFor(impostorBundles);
    await assert.rejects(request(url, { dispatcher: impostor }), { code: "untrusted" });
    await impostor.close();
    const wrongId = agentFor(bundles, "spiffe://stocksmarket.org/other");
    await assert.rejects(request(url, { dispatcher: wrongId }), { code: "unauthorized" });
    await wrongId.close();
  });

  test("the server drops connections while it has no SVID", async () => {
    const saved = svid;
    svid = undefined;
    const agent = agentFor(bundles);
    await assert.rejects(request(url, { dispatcher: agent }));
    await agent.close();
    svid = saved;
    assert.equal((rejected.at(-1) as { code?: string } | undefined)?.code, "no-svid");
  });
});
