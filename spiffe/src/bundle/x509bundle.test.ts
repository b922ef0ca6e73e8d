import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { TrustDomain } from "../spiffeid/spiffeid.js";
import { TestCa } from "../testing/ca.js";
import { BundleError, X509Bundle, X509BundleSet } from "./x509bundle.js";

// Parsed in a hook, so a broken parser fails tests instead of crashing the file.
let broker: TrustDomain;
let stocks: TrustDomain;
before(() => {
  broker = TrustDomain.parse("broker.org");
  stocks = TrustDomain.parse("stocksmarket.org");
});

function assertBundleError(parse: () => unknown, code: string, fragment: string): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof BundleError, `expected BundleError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.ok(error.message.includes(fragment), `"${error.message}" lacks "${fragment}"`);
    return true;
  });
}

describe("X509Bundle", () => {
  let brokerCa: TestCa;
  let secondCa: TestCa;
  let rsaCa: TestCa;
  before(async () => {
    brokerCa = await TestCa.create("broker.org");
    secondCa = await TestCa.create("broker.org");
    rsaCa = await TestCa.create("broker.org", "rsa-2048");
  });

  it("parses a single DER certificate", () => {
    const bundle = X509Bundle.fromDer(broker, brokerCa.bundleDer());
    assert.ok(bundle.trustDomain.equals(broker));
    assert.equal(bundle.certificates.length, 1);
    assert.ok(bundle.certificates[0]?.raw.equals(brokerCa.certificate.raw));
  });

  it("splits concatenated DER certificates (EC and RSA), keeping their order", () => {
    const der = Buffer.concat([brokerCa.bundleDer(), rsaCa.bundleDer(), secondCa.bundleDer()]);
    const bundle = X509Bundle.fromDer(broker, der);
    assert.deepEqual(
      bundle.certificates.map((c) => c.fingerprint256),
      [brokerCa, rsaCa, secondCa].map((ca) => ca.certificate.fingerprint256),
    );
    assert.ok(bundle.toDer().equals(der));
  });

  it("round-trips through PEM", () => {
    const bundle = X509Bundle.fromDer(
      broker,
      Buffer.concat([brokerCa.bundleDer(), rsaCa.bundleDer()]),
    );
    const pem = bundle.toPem();
    assert.equal(pem.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2);
    const again = X509Bundle.fromPem(broker, pem);
    assert.ok(again.equals(bundle));
    assert.equal(again.toPem(), pem);
  });

  it("reads PEM with text around the blocks and CRLF line ends", () => {
    const pem = `subject=whatever\r\n${brokerCa.bundle().toPem().replaceAll("\n", "\r\n")}trailer\n`;
    const bundle = X509Bundle.fromPem(broker, pem);
    assert.ok(bundle.equals(brokerCa.bundle()));
  });

  it("compares trust domain and certificates, ignoring order", () => {
    const ab = X509Bundle.fromDer(
      broker,
      Buffer.concat([brokerCa.bundleDer(), secondCa.bundleDer()]),
    );
    const ba = X509Bundle.fromDer(
      broker,
      Buffer.concat([secondCa.bundleDer(), brokerCa.bundleDer()]),
    );
    assert.ok(ab.equals(ba));
    assert.ok(!ab.equals(X509Bundle.fromDer(broker, brokerCa.bundleDer())));
    assert.ok(
      !ab.equals(
        X509Bundle.fromDer(broker, Buffer.concat([brokerCa.bundleDer(), rsaCa.bundleDer()])),
      ),
    );
    assert.ok(!X509Bundle.fromDer(stocks, brokerCa.bundleDer()).equals(brokerCa.bundle()));
  });

  it("reads empty DER as a bundle without authorities", () => {
    const empty = X509Bundle.fromDer(broker, new Uint8Array());
    assert.equal(empty.trustDomain.name, "broker.org");
    assert.deepEqual(empty.certificates, []);
    assert.equal(empty.toDer().length, 0);
  });

  it("reads blank PEM as a bundle without authorities", () => {
    assert.deepEqual(X509Bundle.fromPem(broker, "").certificates, []);
    assert.deepEqual(X509Bundle.fromPem(broker, " \n\t\n").certificates, []);
  });

  it("rejects PEM text without a certificate block", () => {
    assertBundleError(
      () => X509Bundle.fromPem(broker, "hello\n"),
      "malformed-bundle",
      "holds text but no PEM CERTIFICATE block",
    );
  });

  it("rejects garbage bytes", () => {
    assertBundleError(
      () => X509Bundle.fromDer(broker, Buffer.from("not a certificate at all")),
      "malformed-bundle",
      "broker.org",
    );
  });

  it("rejects a truncated certificate", () => {
    const der = brokerCa.bundleDer();
    assertBundleError(
      () => X509Bundle.fromDer(broker, der.subarray(0, der.length - 10)),
      "malformed-bundle",
      "unreadable DER at byte 0",
    );
  });

  it("rejects trailing bytes after the last certificate", () => {
    const der = Buffer.concat([brokerCa.bundleDer(), Buffer.from([0x30, 0x82])]);
    assertBundleError(
      () => X509Bundle.fromDer(broker, der),
      "malformed-bundle",
      `at byte ${brokerCa.bundleDer().length} after 1 certificate(s)`,
    );
  });

  it("rejects a DER element that is not a SEQUENCE", () => {
    const der = Buffer.concat([brokerCa.bundleDer(), Buffer.from([0x04, 0x02, 0xab, 0xcd])]);
    assertBundleError(() => X509Bundle.fromDer(broker, der), "malformed-bundle", "not a SEQUENCE");
  });

  it("rejects a SEQUENCE that is not a certificate", () => {
    const der = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x05]);
    assertBundleError(
      () => X509Bundle.fromDer(broker, der),
      "malformed-bundle",
      "not a valid X.509 certificate",
    );
  });

  it("rejects PEM holding a private key", () => {
    const pem = `${brokerCa.bundle().toPem()}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`;
    assertBundleError(() => X509Bundle.fromPem(broker, pem), "malformed-bundle", "PRIVATE KEY");
  });

  it("rejects a truncated PEM block", () => {
    const pem = brokerCa.bundle().toPem();
    const truncated = `${pem}${pem.slice(0, pem.length / 2)}`;
    assertBundleError(() => X509Bundle.fromPem(broker, truncated), "malformed-bundle", "2 BEGIN");
  });

  it("rejects PEM whose base64 is broken", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMII*!\n-----END CERTIFICATE-----\n";
    assertBundleError(() => X509Bundle.fromPem(broker, pem), "malformed-bundle", "base64");
  });
});

describe("X509BundleSet", () => {
  let brokerCa: TestCa;
  let stocksCa: TestCa;
  before(async () => {
    brokerCa = await TestCa.create("broker.org");
    stocksCa = await TestCa.create("stocksmarket.org");
  });

  it("hands out each trust domain's own bundle and nothing for others", () => {
    const set = new X509BundleSet([stocksCa.bundle(), brokerCa.bundle()]);
    assert.equal(set.size, 2);
    assert.ok(set.getX509BundleForTrustDomain(broker)?.equals(brokerCa.bundle()));
    assert.ok(set.getX509BundleForTrustDomain(stocks)?.equals(stocksCa.bundle()));
    assert.equal(set.getX509BundleForTrustDomain(TrustDomain.parse("example.org")), undefined);
    assert.deepEqual(
      set.trustDomains().map((td) => td.name),
      ["broker.org", "stocksmarket.org"],
    );
    assert.deepEqual(
      set.bundles().map((b) => b.trustDomain.name),
      ["broker.org", "stocksmarket.org"],
    );
  });

  it("replaces, never merges, a second bundle for the same trust domain", async () => {
    const newer = await TestCa.create("broker.org");
    const set = new X509BundleSet([brokerCa.bundle(), newer.bundle()]);
    assert.equal(set.size, 1);
    const held = set.getX509BundleForTrustDomain(broker);
    assert.equal(held?.certificates.length, 1);
    assert.ok(held?.equals(newer.bundle()));
  });

  it("is empty by default", () => {
    const set = new X509BundleSet();
    assert.equal(set.size, 0);
    assert.deepEqual(set.trustDomains(), []);
  });

  it("equals: same trust domains with equal bundles, in any order", async () => {
    const both = new X509BundleSet([brokerCa.bundle(), stocksCa.bundle()]);
    assert.ok(both.equals(new X509BundleSet([stocksCa.bundle(), brokerCa.bundle()])));
    assert.ok(new X509BundleSet().equals(new X509BundleSet()));
    assert.ok(!both.equals(new X509BundleSet([brokerCa.bundle()])), "a trust domain fewer");
    assert.ok(!new X509BundleSet([brokerCa.bundle()]).equals(both), "a trust domain more");
    const rotated = await TestCa.create("broker.org");
    assert.ok(
      !both.equals(new X509BundleSet([rotated.bundle(), stocksCa.bundle()])),
      "a CA rotated",
    );
    const otherCa = await TestCa.create("other.org");
    assert.ok(
      !both.equals(new X509BundleSet([brokerCa.bundle(), otherCa.bundle()])),
      "as many trust domains, not the same ones",
    );
  });

  it("lists trust domains sorted by name, whatever the order they came in", async () => {
    const cas = await Promise.all(
      ["zeta.org", "broker.org", "mid.org", "alpha.org"].map((name) => TestCa.create(name)),
    );
    const set = new X509BundleSet(cas.map((ca) => ca.bundle()));
    assert.deepEqual(
      set.trustDomains().map((td) => td.name),
      ["alpha.org", "broker.org", "mid.org", "zeta.org"],
    );
  });
});

describe("X509Bundle.equals and errors", () => {
  it("a bundle with one more CA certificate is another bundle", async () => {
    const [one, two] = await Promise.all([
      TestCa.create("broker.org"),
      TestCa.create("broker.org"),
    ]);
    const single = one.bundle();
    const double = X509Bundle.fromDer(broker, Buffer.concat([one.bundleDer(), two.bundleDer()]));
    assert.ok(!single.equals(double));
    assert.ok(!double.equals(single));
  });

  it("keeps the parser's error as the cause", () => {
    for (const parse of [
      () => X509Bundle.fromDer(broker, Buffer.from("garbage")),
      () =>
        X509Bundle.fromPem(broker, "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"),
    ]) {
      assert.throws(parse, (error: unknown) => {
        assert.ok(error instanceof BundleError);
        assert.equal(error.code, "malformed-bundle");
        assert.ok(error.cause instanceof Error, "the underlying error is kept");
        return true;
      });
    }
  });
});
