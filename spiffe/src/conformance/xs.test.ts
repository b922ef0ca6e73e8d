// Conformance catalogue, group XS: the SVID the library presents and the bundles it
// trusts (Workload API 4.3, 4.4, 5.1). The catalogue runs them with the library as mTLS
// server; XS-4 and XS-5 are about trust, so they run in the client role too.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import * as tls from "node:tls";
import { TestCa } from "../testing/ca.js";
import {
  Bed,
  expectAccepted,
  expectRejected,
  keyPem,
  OWN_ID,
  PROBE_ID,
  pem,
  ROLES,
  TD,
  waitFor,
} from "../testing/support/conformance-bed.js";

let bed: Bed;
before(async () => {
  bed = await Bed.start();
});
after(() => bed.stop());

describe("XS, library as mTLS server", () => {
  test("XS-1 presents the X.509-SVID received from FetchX509SVID", async () => {
    assert.equal(await bed.presentedId(), OWN_ID);
    assert.ok(await bed.presents(bed.own));
  });

  test("XS-2 presents the full chain, leaf first, including intermediates", async () => {
    const intermediate = await bed.ca.createIntermediate();
    const fromIntermediate = await intermediate.issue(OWN_ID);
    await bed.pushAndWait(bed.ownResponse({ own: fromIntermediate }));
    try {
      // The suite's side verifies against the root only, with OpenSSL's own path building.
      const probe = await bed.ca.issue(PROBE_ID);
      const socket = tls.connect({
        host: "127.0.0.1",
        port: bed.harness.x509Port,
        ca: bed.ca.rootCertificate.toString(),
        cert: pem(probe.certificates),
        key: keyPem(probe),
        checkServerIdentity: () => undefined,
      });
      socket.on("error", () => {});
      await once(socket, "secureConnect");
      assert.equal(socket.authorized, true, String(socket.authorizationError));
      const chain = socket.getPeerCertificate(true);
      assert.equal(chain.fingerprint256, fromIntermediate.certificates[0]?.fingerprint256);
      assert.equal(chain.issuerCertificate.fingerprint256, intermediate.certificate.fingerprint256);
      socket.destroy();
    } finally {
      await bed.pushAndWait(bed.ownResponse());
    }
  });

  test("XS-3 uses a rotated SVID for new connections", async () => {
    assert.ok(await bed.presents(bed.own));
    const rotated = await bed.ca.issue(OWN_ID);
    bed.push(bed.ownResponse({ own: rotated }));
    await waitFor("the rotated SVID on new connections", () => bed.presents(rotated));
    await bed.pushAndWait(bed.ownResponse());
    assert.ok(await bed.presents(bed.own));
  });
});

for (const role of ROLES) {
  describe(`XS trust, library as mTLS ${role}`, () => {
    test(`XS-4/${role} accepts a bundle of several concatenated CA certificates and trusts each`, async () => {
      const second = await TestCa.create(TD);
      const localBundle = Buffer.concat([bed.ca.bundleDer(), second.bundleDer()]);
      await bed.pushAndWait(bed.ownResponse({ localBundle }));
      try {
        await expectAccepted(bed, role, await bed.ca.issue(PROBE_ID), PROBE_ID);
        await expectAccepted(bed, role, await second.issue(PROBE_ID), PROBE_ID);
      } finally {
        await bed.pushAndWait(bed.ownResponse());
      }
    });

    test(`XS-5/${role} stops trusting a CA once it is removed from the bundle`, async () => {
      const second = await TestCa.create(TD);
      const fromSecond = await second.issue(PROBE_ID);
      const localBundle = Buffer.concat([bed.ca.bundleDer(), second.bundleDer()]);
      await bed.pushAndWait(bed.ownResponse({ localBundle }));
      await expectAccepted(bed, role, fromSecond, PROBE_ID);
      // CA1 only, with a rotated SVID as the barrier: once it is presented, the bundle
      // that came with it is in force.
      const barrier = await bed.ca.issue(OWN_ID);
      bed.push(bed.ownResponse({ own: barrier }));
      try {
        await waitFor("the barrier SVID", () => bed.presents(barrier));
        await expectRejected(bed, role, await bed.ca.issue(PROBE_ID), fromSecond, "untrusted");
      } finally {
        await bed.pushAndWait(bed.ownResponse());
      }
    });
  });
}
