import { X509Certificate } from "node:crypto";
import forge from "node-forge";
import { SpiffeError } from "../errors/spiffe-error.js";

/**
 * Reading certificates out of the byte forms the Workload API and PEM files use. Internal:
 * callers turn DerError into their own error type (BundleError, SvidError...).
 */

export class DerError extends SpiffeError {
  constructor(message: string, options?: ErrorOptions) {
    super("malformed-der", message, options);
  }
}

interface FromDerOptions {
  strict: boolean;
  parseAllBytes: boolean;
  decodeBitStrings: boolean;
}

// node-forge's typings only declare the boolean form; the options form is what lets us
// read one element at a time and keep BIT STRINGs as raw bytes.
const asn1FromDer = forge.asn1.fromDer as unknown as (
  bytes: forge.util.ByteStringBuffer,
  options: FromDerOptions,
) => forge.asn1.Asn1;

/** Parses one complete DER element (no trailing bytes allowed). */
export function parseAsn1(der: Uint8Array): forge.asn1.Asn1 {
  const buffer = forge.util.createBuffer(Buffer.from(der).toString("binary"));
  return asn1FromDer(buffer, { strict: true, parseAllBytes: true, decodeBitStrings: false });
}

/** Same, from the binary string node-forge hands out for nested values. */
export function parseAsn1Bytes(bytes: string): forge.asn1.Asn1 {
  return asn1FromDer(forge.util.createBuffer(bytes), {
    strict: true,
    parseAllBytes: true,
    decodeBitStrings: false,
  });
}

/**
 * Splits concatenated DER elements (as in the Workload API's x509_svid and bundle fields)
 * into one buffer per top-level element, each checked to be a SEQUENCE.
 */
export function splitDer(der: Uint8Array): Buffer[] {
  const bytes = Buffer.from(der);
  const buffer = forge.util.createBuffer(bytes.toString("binary"));
  const pieces: Buffer[] = [];
  let offset = 0;
  while (buffer.length() > 0) {
    const before = buffer.length();
    let element: forge.asn1.Asn1;
    try {
      element = asn1FromDer(buffer, {
        strict: true,
        parseAllBytes: false,
        decodeBitStrings: false,
      });
    } catch (error) {
      const what = pieces.length === 0 ? "" : ` after ${pieces.length} certificate(s)`;
      throw new DerError(`unreadable DER at byte ${offset}${what}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const length = before - buffer.length();
    if (
      element.tagClass !== forge.asn1.Class.UNIVERSAL ||
      element.type !== forge.asn1.Type.SEQUENCE ||
      !element.constructed
    ) {
      throw new DerError(`the DER element at byte ${offset} is not a certificate (not a SEQUENCE)`);
    }
    pieces.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  return pieces;
}

/** Parses concatenated DER certificates; an empty input gives an empty list. */
export function parseDerCertificates(der: Uint8Array): X509Certificate[] {
  return splitDer(der).map((piece, index) => {
    try {
      return new X509Certificate(piece);
    } catch (error) {
      throw new DerError(
        `element ${index + 1} is not a valid X.509 certificate: ${(error as Error).message}`,
        { cause: error },
      );
    }
  });
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END ([A-Z0-9 ]+)-----/g;
const BASE64 = /^[A-Za-z0-9+/=\s]*$/;

/**
 * Parses every CERTIFICATE block of a PEM text. Any other block type (a private key, say)
 * is an error rather than silently skipped, since it usually means the wrong file.
 */
export function parsePemCertificates(pem: string): X509Certificate[] {
  const certificates: X509Certificate[] = [];
  let blocks = 0;
  for (const match of pem.matchAll(PEM_BLOCK)) {
    const [, begin, body = "", end] = match;
    if (begin !== end) {
      throw new DerError(`PEM block "BEGIN ${begin}" is closed by "END ${end}"`);
    }
    if (begin !== "CERTIFICATE") {
      throw new DerError(`expected only CERTIFICATE blocks in PEM, found a ${begin} block`);
    }
    if (!BASE64.test(body)) {
      throw new DerError(`PEM certificate ${certificates.length + 1} is not valid base64`);
    }
    const parsed = parseDerCertificates(Buffer.from(body, "base64"));
    if (parsed.length !== 1) {
      throw new DerError(
        `PEM certificate ${certificates.length + 1} holds ${parsed.length} DER elements, expected 1`,
      );
    }
    certificates.push(...parsed);
    blocks += 1;
  }
  const begins = pem.split("-----BEGIN ").length - 1;
  if (begins !== blocks) {
    throw new DerError(`PEM has ${begins} BEGIN line(s) but only ${blocks} complete block(s)`);
  }
  return certificates;
}

/** PEM text of certificates, in order. */
export function certificatesToPem(certificates: readonly X509Certificate[]): string {
  return certificates.map((certificate) => certificate.toString()).join("");
}
