// Conformance catalogue, group XF: federation (Workload API 4.4, 4.6), in both roles.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  Bed,
  expectAccepted,
  expectRejected,
  FED_PROBE_ID,
  FED_TD,
  PROBE_ID,
  ROLES,
} from "../testing/support/conformance-bed.js";

let bed: Bed;
before(async () => {
  bed = await Bed.start();
});
after(() => bed.stop());

for (const role of ROLES) {
  describe(`XF, library as mTLS ${role}`, () => {
    test(`XF-1/${role} accepts a peer from a federated trust domain using federated_bundles`, async () => {
      assert.ok(
        bed.harness.source
          .getX509Bundles()
          .trustDomains()
          .some((td) => td.name === FED_TD),
      );
      await expectAccepted(bed, role, await bed.fedCa.issue(FED_PROBE_ID), FED_PROBE_ID);
    });

    test(`XF-2/${role} rejects a peer claiming trust domain B whose chain verifies only against A's bundle`, async () => {
      // Both bundles are held; the local CA signs an ID in the federated trust domain.
      const claimingFed = await bed.ca.issue(FED_PROBE_ID);
      const control = await bed.fedCa.issue(FED_PROBE_ID);
      await expectRejected(bed, role, control, claimingFed, "untrusted");
    });

    test(`XF-3/${role} stops trusting a federated trust domain when a later response omits it`, async () => {
      const fedPeer = await bed.fedCa.issue(FED_PROBE_ID);
      await expectAccepted(bed, role, fedPeer, FED_PROBE_ID);
      // The barrier: the library has applied the response without federated_bundles.
      await bed.pushAndWait(bed.ownResponse({ federated: false }));
      try {
        assert.deepEqual(
          bed.harness.source
            .getX509Bundles()
            .trustDomains()
            .map((td) => td.name),
          ["example.org"],
        );
        await expectRejected(bed, role, await bed.ca.issue(PROBE_ID), fedPeer, "no-bundle");
      } finally {
        await bed.pushAndWait(bed.ownResponse());
      }
    });
  });
}
