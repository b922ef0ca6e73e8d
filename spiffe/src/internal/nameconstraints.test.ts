import assert from "node:assert/strict";
import "reflect-metadata";
import { webcrypto, X509Certificate } from "node:crypto";
import { describe, test } from "node:test";
import * as x509 from "@peculiar/x509";
import { X509Bundle, X509BundleSet } from "../bundle/x509bundle.js";
import { TrustDomain } from "../spiffeid/spiffeid.js";
import { TestCa } from "../testing/ca.js";
import { nameConstraintsExtension, unknownExtension } from "../testing/extensions.js";
import { verifyX509Svid } from "../x509svid/index.js";
import type { NameConstraints } from "./certinfo.js";
import { certificateDetails } from "./certinfo.js";
import { dnsWithin, nameConstraintViolation } from "./nameconstraints.js";

function constraints(partial: {
  permitted?: Partial<NameConstraints["permitted"]>;
  excluded?: Partial<NameConstraints["excluded"]>;
}): NameConstraints {
  return {
    permitted: { dns: [], uri: [], ip: [], ...partial.permitted },
    excluded: { dns: [], uri: [], ip: [], ...partial.excluded },
    unsupported: [],
  };
}

function leafOf(certificates: readonly X509Certificate[]): X509Certificate {
  const [leaf] = certificates;
  assert.ok(leaf);
  return leaf;
}

const noNames = { dnsNames: [], uris: [], ipAddresses: [] };

describe("name constraint matching (RFC 5280 4.2.1.10)", () => {
  test("DNS: the base itself and names with labels added on the left, by whole labels", () => {
    assert.equal(dnsWithin("example.org", "example.org"), true);
    assert.equal(dnsWithin("API.Example.org", "example.org"), true);
    assert.equal(dnsWithin("badexample.org", "example.org"), false);
    assert.equal(dnsWithin("example.org", ".example.org"), false);
    assert.equal(dnsWithin("a.example.org", ".example.org"), true);
    assert.equal(dnsWithin("anything", ""), true);
    // A "." base needs a label added: the base itself, or any other name as long, is out.
    assert.equal(dnsWithin(".example.org", ".example.org"), false);
    assert.equal(dnsWithin("a-much-longer-name.net", ".example.org"), false);
  });

  test("DNS: a name within any one of several permitted bases is permitted", () => {
    const two = constraints({ permitted: { dns: ["a.org", "b.org"] } });
    assert.equal(nameConstraintViolation({ ...noNames, dnsNames: ["x.b.org"] }, two), undefined);
    assert.equal(
      nameConstraintViolation({ ...noNames, dnsNames: ["x.c.org"] }, two),
      "DNS name x.c.org is outside the permitted subtrees",
    );
  });

  test("URI: a '.' base needs a label added; hosts that cannot be checked are refused", () => {
    const domain = constraints({ permitted: { uri: [".example.org"] } });
    const check = (uri: string) => nameConstraintViolation({ ...noNames, uris: [uri] }, domain);
    assert.equal(
      check("spiffe://.example.org/a"),
      "URI host .example.org is outside the permitted subtrees",
    );
    assert.equal(
      check("spiffe://a-much-longer-name.net/a"),
      "URI host a-much-longer-name.net is outside the permitted subtrees",
    );
    const cannot = "so URI name constraints cannot apply";
    assert.equal(check("spiffe://a b/x"), `URI spiffe://a b/x cannot be parsed, ${cannot}`);
    assert.equal(check("spiffe:///a"), `URI spiffe:///a has no host, ${cannot}`);
    assert.equal(
      check("spiffe://[::1]/a"),
      `URI spiffe://[::1]/a has an IP address, not a domain name, as its host, ${cannot}`,
    );
  });

  test("URI: a base is one host, a leading '.' a domain; an IP host cannot be constrained", () => {
    const exact = constraints({ permitted: { uri: ["example.org"] } });
    const names = (uri: string) => ({ ...noNames, uris: [uri] });
    assert.equal(nameConstraintViolation(names("spiffe://example.org/a"), exact), undefined);
    assert.match(
      nameConstraintViolation(names("spiffe://sub.example.org/a"), exact) ?? "",
      /outside the permitted/,
    );
    const domain = constraints({ permitted: { uri: [".example.org"] } });
    assert.equal(nameConstraintViolation(names("spiffe://sub.example.org/a"), domain), undefined);
    assert.match(
      nameConstraintViolation(names("spiffe://10.0.0.1/a"), exact) ?? "",
      /IP address, not a domain name/,
    );
    // Without URI constraints, URIs are not looked at at all.
    const dnsOnly = constraints({ permitted: { dns: ["example.org"] } });
    assert.equal(nameConstraintViolation(names("spiffe://10.0.0.1/a"), dnsOnly), undefined);
  });

  test("IP: address and mask, same family only", () => {
    const tenNet = {
      address: Buffer.from([10, 0, 0, 0]),
      mask: Buffer.from([255, 0, 0, 0]),
    };
    const permitted = constraints({ permitted: { ip: [tenNet] } });
    const ip = (bytes: number[]) => ({ ...noNames, ipAddresses: [Buffer.from(bytes)] });
    assert.equal(nameConstraintViolation(ip([10, 1, 2, 3]), permitted), undefined);
    assert.match(
      nameConstraintViolation(ip([11, 1, 2, 3]), permitted) ?? "",
      /IP address 11\.1\.2\.3 is outside/,
    );
    assert.match(
      nameConstraintViolation(ip(new Array(16).fill(0)), permitted) ?? "",
      /IP address 0:0:0:0:0:0:0:0 is outside/,
    );
    // An IPv6 address is never within an IPv4 subtree, even when it starts with its bytes.
    assert.equal(
      nameConstraintViolation(ip([10, 1, 2, 3, ...new Array(12).fill(0)]), permitted),
      "IP address a01:203:0:0:0:0:0:0 is outside the permitted subtrees",
    );
    const v6Net = { address: Buffer.alloc(16), mask: Buffer.alloc(16) };
    assert.equal(
      nameConstraintViolation(ip([10, 1, 2, 3]), constraints({ permitted: { ip: [v6Net] } })),
      "IP address 10.1.2.3 is outside the permitted subtrees",
    );
    const excluded = constraints({ excluded: { ip: [tenNet] } });
    assert.match(nameConstraintViolation(ip([10, 9, 9, 9]), excluded) ?? "", /excluded/);
  });
});

describe("certificateDetails: critical extensions and name constraints", () => {
  test("lists unknown critical extensions only, and reads name constraints", async () => {
    const ca = await TestCa.create("example.org");
    const plain = await ca.issue("spiffe://example.org/a");
    assert.deepEqual(
      certificateDetails(leafOf(plain.certificates)).unhandledCriticalExtensions,
      [],
    );
    const marked = await ca.issue("spiffe://example.org/a", {
      extensions: [unknownExtension(true)],
      sanCritical: true,
    });
    assert.deepEqual(certificateDetails(leafOf(marked.certificates)).unhandledCriticalExtensions, [
      "1.3.6.1.4.1.55555.1.1",
    ]);
    const constrained = await ca.createIntermediate({
      extensions: [
        nameConstraintsExtension({
          permitted: { dns: ["Svc.Example.org"], uri: [".example.org"], ipv4: ["10.0.0.0/8"] },
          excluded: { email: ["x@example.org"] },
        }),
      ],
    });
    const details = certificateDetails(constrained.certificate);
    assert.deepEqual(details.nameConstraints?.permitted.dns, ["svc.example.org"]);
    assert.deepEqual(details.nameConstraints?.permitted.uri, [".example.org"]);
    assert.deepEqual(details.nameConstraints?.permitted.ip[0]?.mask, Buffer.from([255, 0, 0, 0]));
    assert.deepEqual(details.nameConstraints?.unsupported, ["rfc822Name"]);
    assert.deepEqual(details.unhandledCriticalExtensions, ["2.5.29.30"]);
  });
});

describe("verifyX509Svid with a CA whose subject is empty", () => {
  test("reads it without a TypeError (Node gives an empty subject as undefined)", async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const signingAlgorithm = { name: "ECDSA", hash: "SHA-256" };
    const now = Date.now();
    const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3_600_000) };
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      name: "",
      keys,
      signingAlgorithm,
      ...validity,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    });
    const leafKeys = (await webcrypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign", "verify"],
    )) as webcrypto.CryptoKeyPair;
    const leaf = await x509.X509CertificateGenerator.create({
      subject: "CN=leaf",
      issuer: "",
      publicKey: leafKeys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm,
      notBefore: validity.notBefore,
      // Outlives the root, so that the root's expiry can be seen in a message.
      notAfter: new Date(now + 2 * 3_600_000),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.SubjectAlternativeNameExtension([
          { type: "url", value: "spiffe://example.org/a" },
        ]),
      ],
    });
    const rootCert = new X509Certificate(Buffer.from(root.rawData));
    const bundles = new X509BundleSet([
      new X509Bundle(TrustDomain.parse("example.org"), [rootCert]),
    ]);
    const chain = [new X509Certificate(Buffer.from(leaf.rawData))];
    assert.equal(verifyX509Svid(chain, bundles).id.toString(), "spiffe://example.org/a");
    // Refused, the root is named by its (empty) subject in quotes.
    assert.throws(
      () => verifyX509Svid(chain, bundles, new Date(now + 90 * 60_000)),
      /^VerificationError: bundle certificate "" expired at /,
    );
  });
});
