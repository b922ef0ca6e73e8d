import assert from "node:assert/strict";
import type { X509Certificate } from "node:crypto";
import { before, describe, it } from "node:test";
import forge from "node-forge";
import { TestCa } from "../testing/ca.js";
import { certificateDetails } from "./certinfo.js";
import { DerError } from "./der.js";

describe("certificateDetails", () => {
  let ca: TestCa;
  before(async () => {
    ca = await TestCa.create("broker.org");
  });

  it("reads a SPIRE-like root: cA, keyCertSign + cRLSign, trust domain URI", () => {
    const details = certificateDetails(ca.certificate);
    assert.equal(details.isCa, true);
    assert.equal(details.pathLength, undefined);
    assert.deepEqual(details.keyUsage, {
      digitalSignature: false,
      keyCertSign: true,
      cRLSign: true,
    });
    assert.deepEqual(details.uris, ["spiffe://broker.org"]);
    assert.deepEqual(details.dnsNames, []);
  });

  it("reads a leaf's SANs in order, keyUsage and validity", async () => {
    const notBefore = new Date("2026-01-02T03:04:05Z");
    const notAfter = new Date("2051-06-07T08:09:10Z"); // after 2049: GeneralizedTime
    const { certificates } = await ca.issue("spiffe://broker.org/webapp", {
      uris: ["spiffe://broker.org/webapp", "https://example.org/x"],
      dnsNames: ["broker-webapp", "localhost"],
      notBefore,
      notAfter,
    });
    const leaf = certificates[0];
    assert.ok(leaf);
    const details = certificateDetails(leaf);
    assert.equal(details.isCa, false);
    assert.deepEqual(details.uris, ["spiffe://broker.org/webapp", "https://example.org/x"]);
    assert.deepEqual(details.dnsNames, ["broker-webapp", "localhost"]);
    assert.deepEqual(details.keyUsage, {
      digitalSignature: true,
      keyCertSign: false,
      cRLSign: false,
    });
    assert.equal(details.notBefore.toISOString(), notBefore.toISOString());
    assert.equal(details.notAfter.toISOString(), notAfter.toISOString());
  });

  it("reads a path length constraint and reports a missing keyUsage", async () => {
    const intermediate = await ca.createIntermediate({ pathLength: 1 });
    assert.equal(certificateDetails(intermediate.certificate).pathLength, 1);
    const { certificates } = await ca.issue("spiffe://broker.org/webapp", { keyUsage: {} });
    assert.ok(certificates[0]);
    assert.equal(certificateDetails(certificates[0]).keyUsage, undefined);
  });
});

// Hand-made DER, to reach the reader's checks that a certificate parsed by Node never
// fails: the reader only looks at `raw`, so any bytes can be put in front of it.
const { asn1 } = forge;
type Node = forge.asn1.Asn1;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;
const seq = (...items: Node[]): Node => asn1.create(U, T.SEQUENCE, true, items);
const prim = (type: number, bytes: string): Node => asn1.create(U, type, false, bytes);
const tagged = (tag: number, items: Node[]): Node =>
  asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, true, items);
const oid = (dotted: string): Node => prim(T.OID, asn1.oidToDer(dotted).getBytes());
const der = (node: Node): string => asn1.toDer(node).getBytes();
const utc = (text: string): Node => prim(T.UTCTIME, text);
const VALIDITY = seq(utc("260102030405Z"), utc("260102040405Z"));
const SAN = "2.5.29.17";
const KEY_USAGE = "2.5.29.15";
const BASIC_CONSTRAINTS = "2.5.29.19";

/**
 * An extension whose OCTET STRING holds `value` (raw bytes or a node's DER), with the
 * critical flag `flag` between them when given (a BOOLEAN, or anything else).
 */
function extension(id: string, value: Node | string, flag?: Node): Node {
  const octets = prim(T.OCTETSTRING, typeof value === "string" ? value : der(value));
  return flag ? seq(oid(id), flag, octets) : seq(oid(id), octets);
}

/** tbsCertificate fields: [version,] serial, signature, issuer, validity, subject, key[, extensions]. */
function tbs(options: { version?: boolean; validity?: Node; extensions?: Node[]; extra?: Node[] }) {
  return seq(
    ...(options.version === false ? [] : [tagged(0, [prim(T.INTEGER, "\x02")])]),
    prim(T.INTEGER, "\x01"),
    seq(oid("1.2.840.10045.4.3.2")),
    seq(),
    options.validity ?? VALIDITY,
    seq(),
    seq(),
    ...(options.extra ?? []),
    ...(options.extensions ? [tagged(3, [seq(...options.extensions)])] : []),
  );
}

function rawCertificate(bytes: string): X509Certificate {
  return { raw: Buffer.from(bytes, "binary") } as unknown as X509Certificate;
}

function certificate(tbsNode: Node, trailing = ""): X509Certificate {
  const whole = der(seq(tbsNode, seq(oid("1.2.840.10045.4.3.2")), prim(T.BITSTRING, "\x00")));
  return rawCertificate(whole + trailing);
}

function assertMalformed(cert: X509Certificate, message: string): void {
  assert.throws(
    () => certificateDetails(cert),
    (error: unknown) => {
      assert.ok(error instanceof DerError, `expected DerError, got ${error}`);
      assert.equal(error.code, "malformed-der");
      assert.equal(error.message, message);
      // A parser's own error, reworded, is kept as the cause.
      const reworded = / is unreadable: /.test(message);
      assert.equal(error.cause instanceof Error, reworded, "cause");
      return true;
    },
  );
}

describe("certificateDetails on hand-made DER", () => {
  it("reads a certificate without extensions (and without a version field)", () => {
    for (const version of [true, false]) {
      const details = certificateDetails(certificate(tbs({ version })));
      assert.equal(details.notBefore.toISOString(), "2026-01-02T03:04:05.000Z");
      assert.equal(details.notAfter.toISOString(), "2026-01-02T04:04:05.000Z");
      assert.deepEqual(details.uris, []);
      assert.deepEqual(details.dnsNames, []);
      assert.equal(details.keyUsage, undefined);
      assert.equal(details.isCa, false);
      assert.equal(details.pathLength, undefined);
    }
  });

  it("finds the validity after a first field that is context-specific but not the version", () => {
    const fields = tbs({ version: false });
    // Replace the serial number with a [1]: only a [0] first is the version.
    (fields.value as Node[])[0] = tagged(1, []);
    assert.equal(
      certificateDetails(certificate(fields)).notBefore.toISOString(),
      "2026-01-02T03:04:05.000Z",
    );
  });

  it("only a context-specific [0] first is the version: a universal tag 0 is not", () => {
    const fields = tbs({ version: false });
    (fields.value as Node[])[0] = asn1.create(U, 0, false, "");
    assert.equal(
      certificateDetails(certificate(fields)).notBefore.toISOString(),
      "2026-01-02T03:04:05.000Z",
    );
  });

  it("an explicit cA FALSE is not a CA", () => {
    const constraints = seq(prim(T.BOOLEAN, "\x00"));
    const details = certificateDetails(
      certificate(tbs({ extensions: [extension(BASIC_CONSTRAINTS, constraints)] })),
    );
    assert.equal(details.isCa, false);
  });

  it("ignores universal BIT STRING fields; only [3] holds the extensions", () => {
    const extra = [prim(T.BITSTRING, "\x00")];
    assert.deepEqual(certificateDetails(certificate(tbs({ extra }))).uris, []);
  });

  it("an empty basicConstraints means not a CA; a SAN's other name forms are skipped", () => {
    const san = seq(
      asn1.create(asn1.Class.CONTEXT_SPECIFIC, 1, false, "a@b.c"), // rfc822Name
      prim(T.INTEGER, "\x01"), // universal, type 2 like a dNSName: not a GeneralName
      prim(T.OID, asn1.oidToDer("1.2.3").getBytes()), // universal, type 6 like a URI
      asn1.create(asn1.Class.CONTEXT_SPECIFIC, 6, false, "spiffe://broker.org/x"),
      asn1.create(asn1.Class.CONTEXT_SPECIFIC, 2, false, "webapp"),
    );
    const details = certificateDetails(
      certificate(tbs({ extensions: [extension(BASIC_CONSTRAINTS, seq()), extension(SAN, san)] })),
    );
    assert.equal(details.isCa, false);
    assert.deepEqual(details.uris, ["spiffe://broker.org/x"]);
    assert.deepEqual(details.dnsNames, ["webapp"]);
  });

  it("reads keyUsage bits as bits, even when they happen to look like DER", () => {
    // Unused bits 0, then 0x05 0x00: keyCertSign and the bit after cRLSign... and a NULL.
    const usage = prim(T.BITSTRING, "\x00\x05\x00");
    const details = certificateDetails(
      certificate(tbs({ extensions: [extension(KEY_USAGE, usage)] })),
    );
    assert.deepEqual(details.keyUsage, {
      digitalSignature: false,
      keyCertSign: true,
      cRLSign: false,
    });
  });

  const broken: [string, Node | (() => X509Certificate), string][] = [
    ["no tbsCertificate", () => rawCertificate(der(seq())), "tbsCertificate is missing"],
    [
      "a certificate that is no SEQUENCE",
      () => rawCertificate("\x02\x01\x01"),
      "Certificate is not a constructed value",
    ],
    ["an empty tbsCertificate", seq(), "validity is missing"],
    [
      "a primitive [3]",
      seq(...(tbs({}).value as Node[]), asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, false, "")),
      "extensions is not a constructed value",
    ],
    [
      "a primitive extensions SEQUENCE",
      seq(...(tbs({}).value as Node[]), tagged(3, [prim(T.SEQUENCE, "")])),
      "extensions is not a constructed value",
    ],
    ["no validity", seq(prim(T.INTEGER, "\x01")), "validity is missing"],
    [
      "a missing notAfter",
      tbs({ validity: seq(utc("260102030405Z")) }),
      "notAfter is not a valid UTCTime or GeneralizedTime",
    ],
    [
      "a notBefore that is no time",
      tbs({ validity: seq(prim(T.INTEGER, "\x01"), utc("260102030405Z")) }),
      "notBefore is not a valid UTCTime or GeneralizedTime",
    ],
    [
      "a notBefore that is a SEQUENCE",
      tbs({ validity: seq(seq(), utc("260102030405Z")) }),
      "notBefore is not a valid UTCTime or GeneralizedTime",
    ],
    [
      "a context-specific time",
      tbs({
        validity: seq(
          asn1.create(asn1.Class.CONTEXT_SPECIFIC, T.UTCTIME, false, "260102030405Z"),
          utc("260102030405Z"),
        ),
      }),
      "notBefore is not a valid UTCTime or GeneralizedTime",
    ],
    [
      "an impossible date",
      tbs({ validity: seq(utc("26x102030405Z"), utc("260102030405Z")) }),
      "notBefore is not a valid UTCTime or GeneralizedTime",
    ],
    [
      "a primitive validity",
      tbs({ validity: prim(T.SEQUENCE, "") }),
      "validity is not a constructed value",
    ],
    [
      "a primitive tbsCertificate",
      () => rawCertificate(der(seq(prim(T.SEQUENCE, "")))),
      "tbsCertificate is not a constructed value",
    ],
    [
      "extensions that are no SEQUENCE",
      seq(...(tbs({}).value as Node[]), tagged(3, [prim(T.INTEGER, "\x01")])),
      "extensions is not a SEQUENCE",
    ],
    [
      "an extension that is no (OID, OCTET STRING) pair",
      tbs({ extensions: [seq(prim(T.INTEGER, "\x01"), prim(T.OCTETSTRING, ""))] }),
      "an extension is not an (OID, OCTET STRING) pair",
    ],
    [
      "an extension value that is no OCTET STRING",
      tbs({ extensions: [seq(oid(SAN), prim(T.INTEGER, "\x01"))] }),
      "an extension is not an (OID, OCTET STRING) pair",
    ],
    [
      "an extension that is primitive",
      tbs({ extensions: [prim(T.SEQUENCE, "")] }),
      "extension is not a constructed value",
    ],
    [
      "a constructed extension OID",
      tbs({ extensions: [seq(asn1.create(U, T.OID, true, []), prim(T.OCTETSTRING, ""))] }),
      "extension OID is not a primitive value",
    ],
    [
      "a constructed extension value",
      tbs({ extensions: [seq(oid(SAN), asn1.create(U, T.OCTETSTRING, true, []))] }),
      `extension ${SAN} is not a primitive value`,
    ],
    [
      "a SAN that is no list",
      tbs({ extensions: [extension(SAN, prim(T.OCTETSTRING, "x"))] }),
      "subjectAltName is not a constructed value",
    ],
    [
      "a constructed URI SAN",
      tbs({ extensions: [extension(SAN, seq(tagged(6, [])))] }),
      "URI SAN is not a primitive value",
    ],
    [
      "a constructed DNS SAN",
      tbs({ extensions: [extension(SAN, seq(tagged(2, [])))] }),
      "DNS SAN is not a primitive value",
    ],
    [
      "a SAN with trailing bytes",
      tbs({ extensions: [extension(SAN, `${der(seq())}\x00`)] }),
      `extension ${SAN} is unreadable: Unparsed DER bytes remain after ASN.1 parsing.`,
    ],
    [
      "a SAN cut short",
      tbs({ extensions: [extension(SAN, "\x30\x05\x02\x01\x01")] }),
      `extension ${SAN} is unreadable: Too few bytes to read ASN.1 value.`,
    ],
    [
      "a keyUsage that is no BIT STRING",
      tbs({ extensions: [extension(KEY_USAGE, prim(T.INTEGER, "\x01"))] }),
      "keyUsage is not a BIT STRING",
    ],
    [
      "a constructed keyUsage",
      tbs({ extensions: [extension(KEY_USAGE, asn1.create(U, T.BITSTRING, true, []))] }),
      "keyUsage is not a primitive value",
    ],
    [
      "a basicConstraints that is no SEQUENCE",
      tbs({ extensions: [extension(BASIC_CONSTRAINTS, prim(T.BOOLEAN, "\xff"))] }),
      "basicConstraints is not a SEQUENCE",
    ],
    [
      "a primitive basicConstraints",
      tbs({ extensions: [extension(BASIC_CONSTRAINTS, prim(T.SEQUENCE, ""))] }),
      "basicConstraints is not a constructed value",
    ],
    [
      "a constructed cA flag",
      tbs({ extensions: [extension(BASIC_CONSTRAINTS, seq(asn1.create(U, T.BOOLEAN, true, [])))] }),
      "cA is not a primitive value",
    ],
    [
      "a constructed path length",
      tbs({ extensions: [extension(BASIC_CONSTRAINTS, seq(asn1.create(U, T.INTEGER, true, [])))] }),
      "pathLenConstraint is not a primitive value",
    ],
    [
      "trailing bytes after the certificate",
      () => certificate(tbs({}), "\x00"),
      "certificate DER is unreadable: Unparsed DER bytes remain after ASN.1 parsing.",
    ],
    [
      "a certificate cut short",
      () => rawCertificate("\x30\x05\x02\x01\x01"),
      "certificate DER is unreadable: Too few bytes to read ASN.1 value.",
    ],
  ];
  for (const [what, input, message] of broken) {
    it(`refuses ${what}: "${message}"`, () => {
      assertMalformed(typeof input === "function" ? input() : certificate(input), message);
    });
  }
});

// The readers issue 11 added: IP SANs, the critical flag, and nameConstraints.
const NAME_CONSTRAINTS = "2.5.29.30";
const UNKNOWN = "1.3.6.1.4.1.55555.1.1";
const ctx = (tag: number, bytes: string): Node =>
  asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, false, bytes);
const TRUE = prim(T.BOOLEAN, "\xff");
const FALSE = prim(T.BOOLEAN, "\x00");

function detailsWith(...extensions: Node[]) {
  return certificateDetails(certificate(tbs({ extensions })));
}

/** One GeneralSubtree whose base is `base`. */
const subtree = (base: Node, ...bounds: Node[]): Node => seq(base, ...bounds);

describe("certificateDetails: IP SANs, critical flags and name constraints (hand-made DER)", () => {
  it("gives empty lists and no constraints for a certificate without extensions", () => {
    const details = certificateDetails(certificate(tbs({})));
    assert.deepEqual(details.ipAddresses, []);
    assert.equal(details.nameConstraints, undefined);
    assert.deepEqual(details.unhandledCriticalExtensions, []);
  });

  it("reads IPv4 and IPv6 SANs as bytes, in order", () => {
    const v6 = `\x20\x01\x0d\xb8${"\x00".repeat(11)}\x01`;
    const details = detailsWith(extension(SAN, seq(ctx(7, "\x0a\x00\x00\x01"), ctx(7, v6))));
    assert.deepEqual(details.ipAddresses, [Buffer.from([10, 0, 0, 1]), Buffer.from(v6, "binary")]);
    assert.deepEqual(details.uris, []);
  });

  it("treats every extension it processes as handled when critical, and no other", () => {
    const processed = [
      extension(SAN, seq(ctx(6, "spiffe://broker.org/x")), TRUE),
      extension(KEY_USAGE, prim(T.BITSTRING, "\x07\x80"), TRUE),
      extension(BASIC_CONSTRAINTS, seq(), TRUE),
      extension(NAME_CONSTRAINTS, seq(tagged(0, [subtree(ctx(2, "broker.org"))])), TRUE),
      // Their contents are not read, so any bytes do.
      extension("2.5.29.14", "\x04\x01\x01", TRUE), // subjectKeyIdentifier
      extension("2.5.29.35", seq(), TRUE), // authorityKeyIdentifier
      extension("2.5.29.37", seq(), TRUE), // extKeyUsage
    ];
    assert.deepEqual(detailsWith(...processed).unhandledCriticalExtensions, []);
    const unknown = detailsWith(...processed, extension(UNKNOWN, seq(), TRUE));
    assert.deepEqual(unknown.unhandledCriticalExtensions, [UNKNOWN]);
  });

  it("an explicit critical FALSE is not critical; any non-zero BOOLEAN is", () => {
    assert.deepEqual(detailsWith(extension(UNKNOWN, seq(), FALSE)).unhandledCriticalExtensions, []);
    const one = prim(T.BOOLEAN, "\x01");
    assert.deepEqual(detailsWith(extension(UNKNOWN, seq(), one)).unhandledCriticalExtensions, [
      UNKNOWN,
    ]);
  });

  it("reads both subtree lists: DNS and URI lower-cased, IP as address and mask", () => {
    const v6 = `\xfd\x00${"\x00".repeat(14)}\xff\xff${"\x00".repeat(14)}`;
    const value = seq(
      tagged(0, [
        subtree(ctx(2, "Svc.Broker.ORG")),
        subtree(ctx(6, ".Broker.org")),
        subtree(ctx(7, "\x0a\x00\x00\x00\xff\x00\x00\x00")),
      ]),
      tagged(1, [subtree(ctx(2, "Bad.Broker.org")), subtree(ctx(7, v6))]),
    );
    const constraints = detailsWith(extension(NAME_CONSTRAINTS, value, TRUE)).nameConstraints;
    assert.deepEqual(constraints, {
      permitted: {
        dns: ["svc.broker.org"],
        uri: [".broker.org"],
        ip: [{ address: Buffer.from([10, 0, 0, 0]), mask: Buffer.from([255, 0, 0, 0]) }],
      },
      excluded: {
        dns: ["bad.broker.org"],
        uri: [],
        ip: [
          {
            address: Buffer.from(v6.slice(0, 16), "binary"),
            mask: Buffer.from(v6.slice(16), "binary"),
          },
        ],
      },
      unsupported: [],
    });
  });

  it("names each name form it cannot check, and subtree bounds, once each", () => {
    const value = seq(
      tagged(0, [
        subtree(ctx(0, "")),
        subtree(ctx(1, "a@broker.org")),
        subtree(ctx(3, "")),
        subtree(ctx(4, "")),
        subtree(ctx(1, "b@broker.org")),
      ]),
      tagged(1, [
        subtree(ctx(5, "")),
        subtree(ctx(8, "")),
        subtree(ctx(9, "")),
        subtree(ctx(2, "broker.org"), ctx(0, "\x01")),
      ]),
    );
    const details = detailsWith(extension(NAME_CONSTRAINTS, value, FALSE));
    assert.deepEqual(details.nameConstraints?.unsupported, [
      "otherName",
      "rfc822Name",
      "x400Address",
      "directoryName",
      "ediPartyName",
      "registeredID",
      "GeneralName [9]",
      "a subtree minimum or maximum",
    ]);
    // Not critical, so nothing to refuse; the DNS base is still read.
    assert.deepEqual(details.unhandledCriticalExtensions, []);
    assert.deepEqual(details.nameConstraints?.excluded.dns, ["broker.org"]);
  });

  it("a critical nameConstraints with a form it cannot check is unhandled, the others stay handled", () => {
    const value = seq(tagged(0, [subtree(ctx(1, "a@broker.org"))]));
    const details = detailsWith(
      extension(NAME_CONSTRAINTS, value, TRUE),
      extension(BASIC_CONSTRAINTS, seq(TRUE), TRUE),
      extension(KEY_USAGE, prim(T.BITSTRING, "\x01\x06"), TRUE),
    );
    assert.deepEqual(details.unhandledCriticalExtensions, [NAME_CONSTRAINTS]);
    assert.equal(details.isCa, true);
  });

  const nc = (value: Node | string): Node => extension(NAME_CONSTRAINTS, value, TRUE);
  const broken: [string, Node, string][] = [
    [
      "an extension of four parts",
      seq(oid(UNKNOWN), TRUE, TRUE, prim(T.OCTETSTRING, "")),
      `extension ${UNKNOWN} is not (OID, [critical BOOLEAN], OCTET STRING)`,
    ],
    [
      "a critical flag that is no BOOLEAN",
      extension(UNKNOWN, seq(), prim(T.INTEGER, "\x01")),
      `extension ${UNKNOWN} is not (OID, [critical BOOLEAN], OCTET STRING)`,
    ],
    [
      "a constructed critical flag",
      extension(UNKNOWN, seq(), asn1.create(U, T.BOOLEAN, true, [])),
      `extension ${UNKNOWN} critical is not a primitive value`,
    ],
    [
      "an IP SAN of 5 bytes",
      extension(SAN, seq(ctx(7, "\x0a\x00\x00\x00\x01"))),
      "an IP address SAN has 5 bytes, not 4 or 16",
    ],
    ["a constructed IP SAN", extension(SAN, seq(tagged(7, []))), "IP SAN is not a primitive value"],
    [
      "nameConstraints that are no SEQUENCE",
      nc(prim(T.INTEGER, "\x01")),
      "nameConstraints is not a SEQUENCE",
    ],
    [
      "primitive nameConstraints",
      nc(prim(T.SEQUENCE, "")),
      "nameConstraints is not a constructed value",
    ],
    [
      "a universal part in nameConstraints",
      nc(seq(prim(T.BOOLEAN, "\xff"))),
      "nameConstraints holds something other than [0] permitted or [1] excluded",
    ],
    [
      "a [2] part in nameConstraints",
      nc(seq(tagged(2, []))),
      "nameConstraints holds something other than [0] permitted or [1] excluded",
    ],
    ["a primitive subtree list", nc(seq(ctx(0, ""))), "GeneralSubtrees is not a constructed value"],
    [
      "a subtree that is no SEQUENCE",
      nc(seq(tagged(1, [prim(T.INTEGER, "\x01")]))),
      "a GeneralSubtree is not a SEQUENCE",
    ],
    [
      "a primitive subtree",
      nc(seq(tagged(0, [prim(T.SEQUENCE, "")]))),
      "GeneralSubtree is not a constructed value",
    ],
    [
      "a subtree without a base",
      nc(seq(tagged(0, [seq()]))),
      "a GeneralSubtree has no GeneralName base",
    ],
    [
      "a subtree whose base is universal",
      nc(seq(tagged(0, [seq(prim(T.IA5STRING, "x"))]))),
      "a GeneralSubtree has no GeneralName base",
    ],
    [
      "a constructed dNSName subtree",
      nc(seq(tagged(0, [seq(tagged(2, []))]))),
      "dNSName subtree is not a primitive value",
    ],
    [
      "a constructed URI subtree",
      nc(seq(tagged(0, [seq(tagged(6, []))]))),
      "URI subtree is not a primitive value",
    ],
    [
      "a constructed iPAddress subtree",
      nc(seq(tagged(0, [seq(tagged(7, []))]))),
      "iPAddress subtree is not a primitive value",
    ],
    [
      "an iPAddress subtree of 4 bytes",
      nc(seq(tagged(0, [subtree(ctx(7, "\x0a\x00\x00\x00"))]))),
      "an iPAddress subtree has 4 bytes, not 8 or 32",
    ],
    [
      "an iPAddress subtree of 16 bytes",
      nc(seq(tagged(0, [subtree(ctx(7, "\x00".repeat(16)))]))),
      "an iPAddress subtree has 16 bytes, not 8 or 32",
    ],
  ];
  for (const [what, extensionNode, message] of broken) {
    it(`refuses ${what}: "${message}"`, () => {
      assertMalformed(certificate(tbs({ extensions: [extensionNode] })), message);
    });
  }
});

describe("certificateDetails: the signature algorithm", () => {
  const PSS = "1.2.840.113549.1.1.10";
  const SHA1 = "1.3.14.3.2.26";
  const SHA256 = "2.16.840.1.101.3.4.2.1";
  const MGF1 = "1.2.840.113549.1.1.8";
  const signedWith = (algorithm: Node | undefined): X509Certificate =>
    rawCertificate(
      der(
        algorithm === undefined ? seq(tbs({})) : seq(tbs({}), algorithm, prim(T.BITSTRING, "\x00")),
      ),
    );
  const algorithmOf = (algorithm: Node) =>
    certificateDetails(signedWith(algorithm)).signatureAlgorithm;

  it("reads the OID, without PSS parameters for other algorithms", () => {
    assert.deepEqual(algorithmOf(seq(oid("1.2.840.10045.4.3.2"))), { oid: "1.2.840.10045.4.3.2" });
    assert.deepEqual(algorithmOf(seq(oid("1.2.840.113549.1.1.11"), prim(T.NULL, ""))), {
      oid: "1.2.840.113549.1.1.11",
    });
  });

  it("reads RSASSA-PSS parameters, SHA-1 when they are left out", () => {
    assert.deepEqual(algorithmOf(seq(oid(PSS))), {
      oid: PSS,
      pss: { hash: SHA1, mgfHash: SHA1 },
    });
    assert.deepEqual(algorithmOf(seq(oid(PSS), seq())), {
      oid: PSS,
      pss: { hash: SHA1, mgfHash: SHA1 },
    });
    const sha256 = seq(
      oid(PSS),
      seq(
        tagged(0, [seq(oid(SHA256))]),
        tagged(1, [seq(oid(MGF1), seq(oid(SHA256)))]),
        tagged(2, [prim(T.INTEGER, "\x20")]),
      ),
    );
    assert.deepEqual(algorithmOf(sha256), { oid: PSS, pss: { hash: SHA256, mgfHash: SHA256 } });
    const otherMask = seq(oid(PSS), seq(tagged(1, [seq(oid("1.2.3.4"), seq(oid(SHA256)))])));
    assert.deepEqual(algorithmOf(otherMask), { oid: PSS, pss: { hash: SHA1, mgfHash: undefined } });
  });

  it("refuses a malformed signatureAlgorithm", () => {
    assertMalformed(signedWith(undefined), "signatureAlgorithm is not a SEQUENCE");
    assertMalformed(
      signedWith(seq(prim(T.INTEGER, "\x01"))),
      "signatureAlgorithm algorithm is not an OBJECT IDENTIFIER",
    );
    assertMalformed(
      signedWith(seq(oid(PSS), prim(T.NULL, ""))),
      "RSASSA-PSS parameters are not a SEQUENCE",
    );
    assertMalformed(
      signedWith(seq(oid(PSS), seq(seq(oid(SHA256))))),
      "RSASSA-PSS parameters hold an untagged field",
    );
    assertMalformed(
      signedWith(seq(oid(PSS), seq(tagged(0, [prim(T.NULL, "")])))),
      "RSASSA-PSS hashAlgorithm is not a SEQUENCE",
    );
    assertMalformed(
      signedWith(seq(oid(PSS), seq(tagged(1, [seq(oid(MGF1))])))),
      "MGF1 hash is not a SEQUENCE",
    );
  });
});
