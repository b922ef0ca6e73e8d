import type { X509Certificate } from "node:crypto";
import forge from "node-forge";
import { DerError, parseAsn1, parseAsn1Bytes } from "./der.js";

/**
 * The certificate fields the SPIFFE rules need, read straight from the DER. Node's
 * X509Certificate gives SANs only as an ambiguous display string, validity only as text,
 * and its `keyUsage` is the *extended* key usage, so these come from the ASN.1 instead.
 */
export interface CertificateDetails {
  notBefore: Date;
  notAfter: Date;
  /** uniformResourceIdentifier SANs, in certificate order. */
  uris: string[];
  dnsNames: string[];
  /** The keyUsage extension (2.5.29.15), or undefined when the certificate has none. */
  keyUsage: KeyUsage | undefined;
  /**
   * basicConstraints cA. Node's X509Certificate.ca is not this: OpenSSL's check also wants
   * keyCertSign, so a leaf claiming cA without keyCertSign would slip through it.
   */
  isCa: boolean;
  /** basicConstraints pathLenConstraint, when present. */
  pathLength: number | undefined;
}

export interface KeyUsage {
  digitalSignature: boolean;
  keyCertSign: boolean;
  cRLSign: boolean;
}

const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_KEY_USAGE = "2.5.29.15";
const OID_BASIC_CONSTRAINTS = "2.5.29.19";

const { Class, Type } = forge.asn1;

type Asn1 = forge.asn1.Asn1;

function children(node: Asn1, what: string): Asn1[] {
  if (!Array.isArray(node.value)) throw new DerError(`${what} is not a constructed value`);
  return node.value;
}

function bytesOf(node: Asn1, what: string): string {
  if (typeof node.value !== "string") throw new DerError(`${what} is not a primitive value`);
  return node.value;
}

function isUniversal(node: Asn1 | undefined, type: forge.asn1.Type): node is Asn1 {
  return node !== undefined && node.tagClass === Class.UNIVERSAL && node.type === type;
}

function readTime(node: Asn1 | undefined, what: string): Date {
  let date: Date | undefined;
  if (isUniversal(node, Type.UTCTIME)) date = forge.asn1.utcTimeToDate(bytesOf(node, what));
  if (isUniversal(node, Type.GENERALIZEDTIME)) {
    date = forge.asn1.generalizedTimeToDate(bytesOf(node, what));
  }
  if (date === undefined || Number.isNaN(date.getTime())) {
    throw new DerError(`${what} is not a valid UTCTime or GeneralizedTime`);
  }
  return date;
}

function readSubjectAltNames(value: string): { uris: string[]; dnsNames: string[] } {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const name of children(parseAsn1Bytes(value), "subjectAltName")) {
    if (name.tagClass !== Class.CONTEXT_SPECIFIC) continue;
    // GeneralName [6] uniformResourceIdentifier and [2] dNSName, both IA5String. bytesOf
    // refuses a constructed encoding rather than skipping it, so no URI can hide there.
    if (name.type === 6) uris.push(bytesOf(name, "URI SAN"));
    if (name.type === 2) dnsNames.push(bytesOf(name, "DNS SAN"));
  }
  return { uris, dnsNames };
}

function readKeyUsage(value: string): KeyUsage {
  const bitString = parseAsn1Bytes(value);
  if (!isUniversal(bitString, Type.BITSTRING)) throw new DerError("keyUsage is not a BIT STRING");
  // First byte: count of unused bits; then bit 0 (digitalSignature) is the top bit.
  const bits = bytesOf(bitString, "keyUsage").charCodeAt(1) || 0;
  return {
    digitalSignature: (bits & 0x80) !== 0,
    keyCertSign: (bits & 0x04) !== 0,
    cRLSign: (bits & 0x02) !== 0,
  };
}

function readBasicConstraints(value: string): { isCa: boolean; pathLength: number | undefined } {
  const sequence = parseAsn1Bytes(value);
  if (!isUniversal(sequence, Type.SEQUENCE)) {
    throw new DerError("basicConstraints is not a SEQUENCE");
  }
  const fields = children(sequence, "basicConstraints");
  const flag = fields.find((n) => isUniversal(n, Type.BOOLEAN));
  const integer = fields.find((n) => isUniversal(n, Type.INTEGER));
  return {
    isCa: flag !== undefined && bytesOf(flag, "cA") !== "\x00",
    pathLength: integer
      ? forge.asn1.derToInteger(bytesOf(integer, "pathLenConstraint"))
      : undefined,
  };
}

const cache = new WeakMap<X509Certificate, CertificateDetails>();

/** Reads (once per certificate object) the fields above; throws DerError when malformed. */
export function certificateDetails(certificate: X509Certificate): CertificateDetails {
  const cached = cache.get(certificate);
  if (cached) return cached;
  const details = readDetails(certificate);
  cache.set(certificate, details);
  return details;
}

function readDetails(certificate: X509Certificate): CertificateDetails {
  let root: Asn1;
  try {
    root = parseAsn1(certificate.raw);
  } catch (error) {
    throw new DerError(`certificate DER is unreadable: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const tbs = children(root, "Certificate")[0];
  if (!isUniversal(tbs, Type.SEQUENCE)) throw new DerError("tbsCertificate is missing");
  const fields = children(tbs, "tbsCertificate");
  // Skip the optional explicit [0] version so the remaining fields sit at fixed places.
  const versionTagged = fields[0]?.tagClass === Class.CONTEXT_SPECIFIC && fields[0].type === 0;
  const validity = fields[versionTagged ? 4 : 3];
  if (!isUniversal(validity, Type.SEQUENCE)) throw new DerError("validity is missing");
  const [notBeforeNode, notAfterNode] = children(validity, "validity");
  const details: CertificateDetails = {
    notBefore: readTime(notBeforeNode, "notBefore"),
    notAfter: readTime(notAfterNode, "notAfter"),
    uris: [],
    dnsNames: [],
    keyUsage: undefined,
    isCa: false,
    pathLength: undefined,
  };

  const extensionsTagged = fields.find(
    (field) => field.tagClass === Class.CONTEXT_SPECIFIC && field.type === 3,
  );
  let extensionList: Asn1[] = [];
  if (extensionsTagged) {
    const sequence = children(extensionsTagged, "extensions")[0];
    if (!isUniversal(sequence, Type.SEQUENCE)) throw new DerError("extensions is not a SEQUENCE");
    extensionList = children(sequence, "extensions");
  }
  const seen = new Set<string>();
  for (const extension of extensionList) {
    const parts = children(extension, "extension");
    const oidNode = parts[0];
    const valueNode = parts[parts.length - 1];
    if (!isUniversal(oidNode, Type.OID) || !isUniversal(valueNode, Type.OCTETSTRING)) {
      throw new DerError("an extension is not an (OID, OCTET STRING) pair");
    }
    const oid = forge.asn1.derToOid(forge.util.createBuffer(bytesOf(oidNode, "extension OID")));
    // RFC 5280: at most one instance of an extension; two SAN extensions could otherwise
    // hide a second identity from a checker that reads only the first.
    if (seen.has(oid)) throw new DerError(`extension ${oid} appears more than once`);
    seen.add(oid);
    const value = bytesOf(valueNode, `extension ${oid}`);
    try {
      if (oid === OID_SUBJECT_ALT_NAME) Object.assign(details, readSubjectAltNames(value));
      if (oid === OID_KEY_USAGE) details.keyUsage = readKeyUsage(value);
      if (oid === OID_BASIC_CONSTRAINTS) Object.assign(details, readBasicConstraints(value));
    } catch (error) {
      if (error instanceof DerError) throw error;
      throw new DerError(`extension ${oid} is unreadable: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return details;
}
