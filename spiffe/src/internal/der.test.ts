import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { TestCa } from "../testing/ca.js";
import {
  certificatesToPem,
  DerError,
  parseAsn1,
  parseAsn1Bytes,
  parseDerCertificates,
  parsePemCertificates,
  splitDer,
} from "./der.js";

function assertDerError(parse: () => unknown, message: string | RegExp, cause = false): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof DerError, `expected DerError, got ${error}`);
    assert.equal(error.code, "malformed-der");
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    assert.equal(error.cause instanceof Error, cause, "carries the underlying error");
    return true;
  });
}

const bytes = (text: string) => Buffer.from(text, "binary");

describe("parseAsn1 and parseAsn1Bytes", () => {
  for (const [name, parse] of [
    ["parseAsn1", (text: string) => parseAsn1(bytes(text))],
    ["parseAsn1Bytes", (text: string) => parseAsn1Bytes(text)],
  ] as const) {
    it(`${name}: strict lengths, every byte used, BIT STRINGs kept as bytes`, () => {
      assert.throws(() => parse("\x30\x05\x02\x01\x01"), /Too few bytes/);
      assert.throws(() => parse("\x30\x03\x02\x01\x01\x00"), /Unparsed DER bytes remain/);
      // A BIT STRING whose content happens to be DER (unused bits 0, then a NULL).
      assert.equal(parse("\x03\x03\x00\x05\x00").value, "\x00\x05\x00");
    });
  }
});

describe("parseDerCertificates", () => {
  let der: Buffer;
  before(async () => {
    const ca = await TestCa.create("broker.org");
    der = Buffer.from(ca.certificate.raw);
  });

  it("splits concatenated certificates and gives none for no bytes", () => {
    assert.equal(parseDerCertificates(Buffer.concat([der, der])).length, 2);
    assert.deepEqual(splitDer(new Uint8Array()), []);
  });

  it("names where unreadable bytes start, and how many certificates came before", () => {
    assertDerError(
      () => parseDerCertificates(bytes("\x30\x05\x02")),
      /^unreadable DER at byte 0: /,
      true,
    );
    assertDerError(
      () => parseDerCertificates(Buffer.concat([der, bytes("\x30\x05\x02")])),
      new RegExp(`^unreadable DER at byte ${der.length} after 1 certificate\\(s\\): `),
      true,
    );
  });

  it("refuses an element that is not a constructed universal SEQUENCE", () => {
    for (const [what, element] of [
      ["an INTEGER", "\x02\x01\x01"],
      ["a context-specific [16]", "\xb0\x03\x02\x01\x01"],
      ["a primitive SEQUENCE tag", "\x10\x01\x00"],
      ["a SET", "\x31\x03\x02\x01\x01"],
    ]) {
      assert.throws(
        () => parseDerCertificates(Buffer.concat([der, bytes(element ?? "")])),
        (error: unknown) =>
          error instanceof DerError &&
          error.message ===
            `the DER element at byte ${der.length} is not a certificate (not a SEQUENCE)`,
        what,
      );
    }
  });

  it("refuses a SEQUENCE that is not a certificate, naming which element", () => {
    assertDerError(
      () => parseDerCertificates(Buffer.concat([der, bytes("\x30\x03\x02\x01\x01")])),
      /^element 2 is not a valid X\.509 certificate: /,
      true,
    );
  });
});

describe("parsePemCertificates", () => {
  let pem: string;
  before(async () => {
    const ca = await TestCa.create("broker.org");
    pem = certificatesToPem([ca.certificate]);
  });

  it("reads every CERTIFICATE block, in order", () => {
    assert.equal(parsePemCertificates(pem + pem).length, 2);
  });

  it("refuses a block closed by another type", () => {
    assertDerError(
      () => parsePemCertificates(pem.replace("END CERTIFICATE", "END X509 CRL")),
      'PEM block "BEGIN CERTIFICATE" is closed by "END X509 CRL"',
    );
  });

  it("refuses broken base64, naming the block", () => {
    const broken = pem.replace(/\n[A-Za-z0-9+/]{8}/, "\n!!!!!!!!");
    assertDerError(
      () => parsePemCertificates(pem + broken),
      "PEM certificate 2 is not valid base64",
    );
  });

  it("refuses a block holding two certificates", () => {
    const der = parsePemCertificates(pem)[0]?.raw ?? Buffer.alloc(0);
    const doubled = `-----BEGIN CERTIFICATE-----\n${Buffer.concat([der, der]).toString("base64")}\n-----END CERTIFICATE-----\n`;
    assertDerError(
      () => parsePemCertificates(doubled),
      "PEM certificate 1 holds 2 DER elements, expected 1",
    );
  });

  it("refuses other block types and incomplete blocks", () => {
    assertDerError(
      () => parsePemCertificates("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
      "expected only CERTIFICATE blocks in PEM, found a PRIVATE KEY block",
    );
    assertDerError(
      () => parsePemCertificates(`${pem}-----BEGIN CERTIFICATE-----\nAAAA\n`),
      "PEM has 2 BEGIN line(s) but only 1 complete block(s)",
    );
  });
});
