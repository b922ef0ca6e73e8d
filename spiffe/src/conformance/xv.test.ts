// Conformance catalogue, group XV: peer validation (X509-SVID 5), each case with the
// library as mTLS server (the suite connects to the X.509 port) and as mTLS client (the
// harness dials the suite's server). Every refusal comes after a positive control and
// names the library's exact code.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TestCa } from "../testing/ca.js";
import {
  Bed,
  expectAccepted,
  expectRejected,
  PROBE_ID,
  ROLES,
  TD,
} from "../testing/support/conformance-bed.js";

const HOUR_MS = 3_600_000;

let bed: Bed;
before(async () => {
  bed = await Bed.start();
});
after(() => bed.stop());

for (const role of ROLES) {
  describe(`XV, library as mTLS ${role}`, () => {
    const valid = () => bed.ca.issue(PROBE_ID);

    test(`XV-1/${role} accepts a valid peer SVID (positive control)`, async () => {
      await expectAccepted(bed, role, await valid(), PROBE_ID);
    });

    test(`XV-2/${role} accepts a peer SVID chained through an intermediate`, async () => {
      const intermediate = await bed.ca.createIntermediate();
      const peer = await intermediate.issue(PROBE_ID);
      assert.equal(peer.certificates.length, 2);
      await expectAccepted(bed, role, peer, PROBE_ID);
    });

    test(`XV-3/${role} accepts a peer SVID that also carries DNS SANs`, async () => {
      const peer = await bed.ca.issue(PROBE_ID, { dnsNames: ["probe.example.org", "localhost"] });
      await expectAccepted(bed, role, peer, PROBE_ID);
    });

    test(`XV-4/${role} accepts a peer SVID with an empty Subject and a critical URI SAN`, async () => {
      const peer = await bed.ca.issue(PROBE_ID, { subject: "", sanCritical: true });
      assert.equal(peer.certificates[0]?.subject ?? "", "", "the subject is empty");
      await expectAccepted(bed, role, peer, PROBE_ID);
    });

    test(`XV-5/${role} rejects a peer chaining to an untrusted CA of the same trust domain name`, async () => {
      const impostor = await TestCa.create(TD);
      await expectRejected(bed, role, await valid(), await impostor.issue(PROBE_ID), "untrusted");
    });

    test(`XV-6/${role} rejects an expired peer certificate`, async () => {
      const now = Date.now();
      const peer = await bed.ca.issue(PROBE_ID, {
        notBefore: new Date(now - 2 * HOUR_MS),
        notAfter: new Date(now - HOUR_MS),
      });
      await expectRejected(bed, role, await valid(), peer, "expired");
    });

    test(`XV-7/${role} rejects a not-yet-valid peer certificate`, async () => {
      const now = Date.now();
      const peer = await bed.ca.issue(PROBE_ID, {
        notBefore: new Date(now + HOUR_MS),
        notAfter: new Date(now + 2 * HOUR_MS),
      });
      await expectRejected(bed, role, await valid(), peer, "not-yet-valid");
    });

    test(`XV-8/${role} rejects a peer leaf with cA=true`, async () => {
      const peer = await bed.ca.issue(PROBE_ID, { isCa: true });
      await expectRejected(bed, role, await valid(), peer, "leaf-is-ca");
    });

    test(`XV-9/${role} rejects a peer leaf with keyCertSign`, async () => {
      const peer = await bed.ca.issue(PROBE_ID, {
        keyUsage: { digitalSignature: true, keyCertSign: true },
      });
      await expectRejected(bed, role, await valid(), peer, "key-cert-sign");
    });

    test(`XV-10/${role} rejects a peer leaf with cRLSign`, async () => {
      const peer = await bed.ca.issue(PROBE_ID, {
        keyUsage: { digitalSignature: true, cRLSign: true },
      });
      await expectRejected(bed, role, await valid(), peer, "crl-sign");
    });

    test(`XV-11/${role} rejects a peer with more than one URI SAN`, async () => {
      const peer = await bed.ca.issue(PROBE_ID, {
        uris: [PROBE_ID, `spiffe://${TD}/second`],
      });
      await expectRejected(bed, role, await valid(), peer, "multiple-uri-sans");
    });

    test(`XV-12/${role} rejects a peer without a URI SAN`, async () => {
      const peer = await bed.ca.issue(PROBE_ID, { uris: [], dnsNames: ["probe.example.org"] });
      await expectRejected(bed, role, await valid(), peer, "no-uri-san");
    });

    test(`XV-13/${role} rejects a peer URI SAN that is not spiffe://`, async () => {
      const peer = await bed.ca.issue(PROBE_ID, { uris: [`https://${TD}/probe`] });
      const outcome = await expectRejected(bed, role, await valid(), peer, "invalid-spiffe-id");
      assert.match(outcome.message ?? "", /scheme/);
    });

    test(`XV-14/${role} rejects a peer SPIFFE ID without a path`, async () => {
      const peer = await bed.ca.issue(`spiffe://${TD}`);
      await expectRejected(bed, role, await valid(), peer, "missing-path");
    });

    test(`XV-15/${role} rejects a peer whose trust domain has no bundle, though the local CA signed it`, async () => {
      const peer = await bed.ca.issue("spiffe://other.example.org/x");
      await expectRejected(bed, role, await valid(), peer, "no-bundle");
    });
  });
}
