// RFC 5280 path validation beyond the SPIFFE rules, as go-spiffe gets it from Go's
// crypto/x509: critical extensions the library does not process, and name constraints on
// CA certificates. Each case runs with the library as mTLS server and as mTLS client,
// through the conformance harness, and starts with a positive control.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TrustDomain } from "../spiffeid/spiffeid.js";
import { TestCa } from "../testing/ca.js";
import {
  anyPolicyExtension,
  nameConstraintsExtension,
  unknownExtension,
} from "../testing/extensions.js";
import {
  Bed,
  expectAccepted,
  expectRejected,
  FED_PROBE_ID,
  FED_TD,
  OWN_ID,
  PROBE_ID,
  ROLES,
  TD,
} from "../testing/support/conformance-bed.js";
import { relabelLeafSignature } from "../testing/support/signatures.js";

let bed: Bed;
before(async () => {
  bed = await Bed.start();
});
after(() => bed.stop());

for (const role of ROLES) {
  describe(`critical extensions, library as mTLS ${role}`, () => {
    test("refuses a peer leaf with an unknown critical extension; accepts it non-critical", async () => {
      const control = await bed.ca.issue(PROBE_ID, { extensions: [unknownExtension(false)] });
      const peer = await bed.ca.issue(PROBE_ID, { extensions: [unknownExtension(true)] });
      const outcome = await expectRejected(
        bed,
        role,
        control,
        peer,
        "unhandled-critical-extension",
      );
      assert.match(outcome.message ?? "", /1\.3\.6\.1\.4\.1\.55555\.1\.1/);
    });

    test("refuses a peer leaf with a critical certificatePolicies (not processed here)", async () => {
      const control = await bed.ca.issue(PROBE_ID, { extensions: [anyPolicyExtension(false)] });
      const peer = await bed.ca.issue(PROBE_ID, { extensions: [anyPolicyExtension(true)] });
      const outcome = await expectRejected(
        bed,
        role,
        control,
        peer,
        "unhandled-critical-extension",
      );
      assert.match(outcome.message ?? "", /certificatePolicies/);
    });

    test("refuses a chain whose intermediate has an unknown critical extension", async () => {
      const fine = await bed.ca.createIntermediate({ extensions: [unknownExtension(false)] });
      const bad = await bed.ca.createIntermediate({ extensions: [unknownExtension(true)] });
      await expectRejected(
        bed,
        role,
        await fine.issue(PROBE_ID),
        await bad.issue(PROBE_ID),
        "unhandled-critical-extension",
      );
    });

    test("refuses a chain to a bundle root with an unknown critical extension", async () => {
      const criticalRoot = await TestCa.create(TD, "ec-p256", {
        extensions: [unknownExtension(true)],
      });
      const localBundle = Buffer.concat([bed.ca.bundleDer(), criticalRoot.bundleDer()]);
      await bed.pushAndWait(bed.ownResponse({ localBundle }));
      try {
        await expectRejected(
          bed,
          role,
          await bed.ca.issue(PROBE_ID),
          await criticalRoot.issue(PROBE_ID),
          "unhandled-critical-extension",
        );
      } finally {
        await bed.pushAndWait(bed.ownResponse());
      }
    });
  });

  describe(`signature algorithms, library as mTLS ${role}`, () => {
    test("refuses a peer leaf signed with ecdsa-with-SHA1", async () => {
      const outcome = await expectRejected(
        bed,
        role,
        await bed.ca.issue(PROBE_ID, { signatureHash: "SHA-384" }),
        await bed.ca.issue(PROBE_ID, { signatureHash: "SHA-1" }),
        "weak-signature-algorithm",
      );
      assert.match(outcome.message ?? "", /is signed with ecdsa-with-SHA1, a weak algorithm/);
    });

    test("refuses a chain whose intermediate is signed with SHA-1", async () => {
      const outcome = await expectRejected(
        bed,
        role,
        await (await bed.ca.createIntermediate()).issue(PROBE_ID),
        await (await bed.ca.createIntermediate({ signatureHash: "SHA-1" })).issue(PROBE_ID),
        "weak-signature-algorithm",
      );
      assert.match(
        outcome.message ?? "",
        /^intermediate certificate ".*" is signed with ecdsa-with-SHA1/,
      );
    });

    test("refuses RSA peer leaves signed with SHA-1 or labelled MD5; accepts SHA-512", async () => {
      const rsaRoot = await TestCa.create(TD, "rsa-2048");
      const localBundle = Buffer.concat([bed.ca.bundleDer(), rsaRoot.bundleDer()]);
      await bed.pushAndWait(bed.ownResponse({ localBundle }));
      try {
        const control = await rsaRoot.issue(PROBE_ID, { signatureHash: "SHA-512" });
        const sha1 = await expectRejected(
          bed,
          role,
          control,
          await rsaRoot.issue(PROBE_ID, { signatureHash: "SHA-1" }),
          "weak-signature-algorithm",
        );
        assert.match(sha1.message ?? "", /sha1WithRSAEncryption/);
        const md5 = await expectRejected(
          bed,
          role,
          control,
          relabelLeafSignature(await rsaRoot.issue(PROBE_ID), 4),
          "weak-signature-algorithm",
        );
        assert.match(md5.message ?? "", /md5WithRSAEncryption/);
      } finally {
        await bed.pushAndWait(bed.ownResponse());
      }
    });
  });

  describe(`an empty federated bundle, library as mTLS ${role}`, () => {
    test("is a trust domain without authorities: its peers are refused as untrusted", async () => {
      await expectAccepted(bed, role, await bed.fedCa.issue(FED_PROBE_ID), FED_PROBE_ID);
      const response = bed.ownResponse({ federated: false });
      await bed.pushAndWait({
        ...response,
        federatedBundles: { [`spiffe://${FED_TD}`]: Buffer.alloc(0) },
      });
      try {
        assert.deepEqual(
          bed.harness.source.getX509BundleForTrustDomain(TrustDomain.parse(FED_TD))?.certificates,
          [],
        );
        const outcome = await bed.check(role, await bed.fedCa.issue(FED_PROBE_ID));
        assert.equal(outcome.accepted, false);
        assert.equal(outcome.code, "untrusted", outcome.message);
        assert.match(outcome.message ?? "", /bundle of fed\.example\.org holds no authorities/);
        await expectAccepted(bed, role, await bed.ca.issue(PROBE_ID), PROBE_ID);
      } finally {
        await bed.pushAndWait(bed.ownResponse());
      }
    });
  });

  describe(`name constraints, library as mTLS ${role}`, () => {
    async function constrainedPair(
      allowing: Parameters<typeof nameConstraintsExtension>[0],
      refusing: Parameters<typeof nameConstraintsExtension>[0],
      leaf: { dnsNames?: string[] } = {},
    ) {
      const good = await bed.ca.createIntermediate({
        extensions: [nameConstraintsExtension(allowing)],
      });
      const bad = await bed.ca.createIntermediate({
        extensions: [nameConstraintsExtension(refusing)],
      });
      return { control: await good.issue(PROBE_ID, leaf), peer: await bad.issue(PROBE_ID, leaf) };
    }

    test("permitted URI subtrees: the leaf's trust domain must be permitted", async () => {
      const { control, peer } = await constrainedPair(
        { permitted: { uri: [TD] } },
        { permitted: { uri: ["other.org", ".example.org"] } }, // ".example.org" is subdomains only
      );
      const outcome = await expectRejected(bed, role, control, peer, "name-constraints");
      assert.match(outcome.message ?? "", /URI host example\.org is outside the permitted/);
    });

    test("excluded URI subtrees refuse the leaf's trust domain", async () => {
      const { control, peer } = await constrainedPair(
        { excluded: { uri: ["other.org"] } },
        { excluded: { uri: [TD] } },
      );
      const outcome = await expectRejected(bed, role, control, peer, "name-constraints");
      assert.match(outcome.message ?? "", /URI host example\.org is in an excluded subtree/);
    });

    test("permitted DNS subtrees apply to the leaf's DNS SANs", async () => {
      const { control, peer } = await constrainedPair(
        { permitted: { dns: ["svc.example.org"] } },
        { permitted: { dns: ["other.example.org"] } },
        { dnsNames: ["api.svc.example.org"] },
      );
      const outcome = await expectRejected(bed, role, control, peer, "name-constraints");
      assert.match(outcome.message ?? "", /DNS name api\.svc\.example\.org is outside/);
    });

    test("excluded DNS subtrees apply to the leaf's DNS SANs", async () => {
      const { control, peer } = await constrainedPair(
        { excluded: { dns: ["internal.example.org"] } },
        { excluded: { dns: ["svc.example.org"] } },
        { dnsNames: ["api.svc.example.org"] },
      );
      await expectRejected(bed, role, control, peer, "name-constraints");
    });

    test("DNS constraints leave URI SANs alone, and URI constraints DNS SANs", async () => {
      const dnsOnly = await bed.ca.createIntermediate({
        extensions: [nameConstraintsExtension({ permitted: { dns: ["svc.example.org"] } })],
      });
      await expectAccepted(bed, role, await dnsOnly.issue(PROBE_ID), PROBE_ID);
      const uriOnly = await bed.ca.createIntermediate({
        extensions: [nameConstraintsExtension({ excluded: { uri: ["other.org"] } })],
      });
      const withDns = await uriOnly.issue(PROBE_ID, { dnsNames: ["other.org"] });
      await expectAccepted(bed, role, withDns, PROBE_ID);
    });

    test("name constraints on a bundle root bind every chain below it", async () => {
      const permitting = await TestCa.create(TD, "ec-p256", {
        extensions: [nameConstraintsExtension({ permitted: { uri: [TD] } })],
      });
      const excluding = await TestCa.create(TD, "ec-p256", {
        extensions: [nameConstraintsExtension({ excluded: { uri: [TD] } })],
      });
      const localBundle = Buffer.concat([
        bed.ca.bundleDer(),
        permitting.bundleDer(),
        excluding.bundleDer(),
      ]);
      await bed.pushAndWait(bed.ownResponse({ localBundle }));
      try {
        const below = await excluding.createIntermediate();
        await expectRejected(
          bed,
          role,
          await (await permitting.createIntermediate()).issue(PROBE_ID),
          await below.issue(PROBE_ID),
          "name-constraints",
        );
      } finally {
        await bed.pushAndWait(bed.ownResponse());
      }
    });

    test("a CA's name constraints bind the intermediates below it too", async () => {
      const constrained = await bed.ca.createIntermediate({
        extensions: [nameConstraintsExtension({ permitted: { uri: [TD] } })],
      });
      const inside = await constrained.createIntermediate();
      const outside = await constrained.createIntermediate({ uris: ["spiffe://other.org"] });
      const outcome = await expectRejected(
        bed,
        role,
        await inside.issue(PROBE_ID),
        await outside.issue(PROBE_ID),
        "name-constraints",
      );
      assert.match(outcome.message ?? "", /intermediate 1's names break: URI host other\.org/);
    });

    test("a critical constraint on a name form the library cannot check is refused", async () => {
      // The same constraints non-critical: the rfc822Name part may be ignored, the URI
      // part still binds (RFC 5280 lets a non-critical extension go unprocessed).
      const constraints = { permitted: { uri: [TD], email: ["example.org"] } };
      const nonCritical = await bed.ca.createIntermediate({
        extensions: [nameConstraintsExtension(constraints, false)],
      });
      const critical = await bed.ca.createIntermediate({
        extensions: [nameConstraintsExtension(constraints, true)],
      });
      const outcome = await expectRejected(
        bed,
        role,
        await nonCritical.issue(PROBE_ID),
        await critical.issue(PROBE_ID),
        "unhandled-critical-extension",
      );
      assert.match(outcome.message ?? "", /nameConstraints\) holding rfc822Name/);
    });
  });
}

test("the library's own SVID is served throughout (sanity of the set-up)", async () => {
  assert.equal(await bed.presentedId(), OWN_ID);
});
