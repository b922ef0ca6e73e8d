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
  /** iPAddress SANs: 4 bytes (IPv4) or 16 bytes (IPv6) each. */
  ipAddresses: Buffer[];
  /** The nameConstraints extension (2.5.29.30), or undefined when the certificate has none. */
  nameConstraints: NameConstraints | undefined;
  /**
   * OIDs of the critical extensions this library does not process (RFC 5280 4.2: a
   * certificate with one must be refused), including a critical nameConstraints that
   * holds name forms it cannot check.
   */
  unhandledCriticalExtensions: string[];
}

/** Names of one kind of subtree list (permitted or excluded) of a nameConstraints. */
export interface GeneralSubtrees {
  /** dNSName bases, lower-cased. */
  dns: string[];
  /** uniformResourceIdentifier bases (a host, or a domain when it starts with "."), lower-cased. */
  uri: string[];
  /** iPAddress bases: address and mask of equal length (4+4 or 16+16 bytes). */
  ip: { address: Buffer; mask: Buffer }[];
}

/** A CA's nameConstraints, in the name forms the verifier checks. */
export interface NameConstraints {
  permitted: GeneralSubtrees;
  excluded: GeneralSubtrees;
  /**
   * Name forms present in the extension that this library cannot check (rfc822Name,
   * directoryName, ...), or subtrees with a minimum or maximum, which RFC 5280 forbids.
   */
  unsupported: string[];
}

/** The keyUsage bits the SVID rules look at. */
export interface KeyUsage {
  digitalSignature: boolean;
  keyCertSign: boolean;
  cRLSign: boolean;
}

const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_KEY_USAGE = "2.5.29.15";
const OID_BASIC_CONSTRAINTS = "2.5.29.19";
/** The nameConstraints extension (RFC 5280 4.2.1.10). */
export const OID_NAME_CONSTRAINTS = "2.5.29.30";

/**
 * Extensions this library processes, so that they may be critical. The SVID rules read
 * keyUsage, basicConstraints and subjectAltName; nameConstraints are enforced on the path;
 * Node's checkIssued matches issuers by the key identifiers; extKeyUsage is read and any
 * purpose accepted, as go-spiffe does (its verification asks for ExtKeyUsageAny).
 */
const PROCESSED_EXTENSIONS = new Set([
  OID_KEY_USAGE,
  OID_BASIC_CONSTRAINTS,
  OID_SUBJECT_ALT_NAME,
  OID_NAME_CONSTRAINTS,
  "2.5.29.14", // subjectKeyIdentifier
  "2.5.29.35", // authorityKeyIdentifier
  "2.5.29.37", // extKeyUsage
]);

/**
 * GeneralName forms (RFC 5280 4.2.1.6, by tag) that name constraints may hold but this
 * library does not check; dNSName [2], uniformResourceIdentifier [6] and iPAddress [7] it does.
 */
const UNCHECKED_NAME_FORMS: Record<number, string> = {
  0: "otherName",
  1: "rfc822Name",
  3: "x400Address",
  4: "directoryName",
  5: "ediPartyName",
  8: "registeredID",
};

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

function readSubjectAltNames(value: string): {
  uris: string[];
  dnsNames: string[];
  ipAddresses: Buffer[];
} {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const ipAddresses: Buffer[] = [];
  for (const name of children(parseAsn1Bytes(value), "subjectAltName")) {
    if (name.tagClass !== Class.CONTEXT_SPECIFIC) continue;
    // GeneralName [6] uniformResourceIdentifier and [2] dNSName, both IA5String. bytesOf
    // refuses a constructed encoding rather than skipping it, so no URI can hide there.
    if (name.type === 6) uris.push(bytesOf(name, "URI SAN"));
    if (name.type === 2) dnsNames.push(bytesOf(name, "DNS SAN"));
    if (name.type === 7) {
      const address = Buffer.from(bytesOf(name, "IP SAN"), "binary");
      if (address.length !== 4 && address.length !== 16) {
        throw new DerError(`an IP address SAN has ${address.length} bytes, not 4 or 16`);
      }
      ipAddresses.push(address);
    }
  }
  return { uris, dnsNames, ipAddresses };
}

function emptySubtrees(): GeneralSubtrees {
  return { dns: [], uri: [], ip: [] };
}

/** One [0] permitted or [1] excluded GeneralSubtrees list into `into`. */
function readSubtrees(list: Asn1, into: GeneralSubtrees, unsupported: Set<string>): void {
  for (const subtree of children(list, "GeneralSubtrees")) {
    if (!isUniversal(subtree, Type.SEQUENCE))
      throw new DerError("a GeneralSubtree is not a SEQUENCE");
    const [base, ...bounds] = children(subtree, "GeneralSubtree");
    if (base === undefined || base.tagClass !== Class.CONTEXT_SPECIFIC) {
      throw new DerError("a GeneralSubtree has no GeneralName base");
    }
    // RFC 5280: minimum MUST be zero (DER leaves the default out) and maximum absent.
    if (bounds.length > 0) unsupported.add("a subtree minimum or maximum");
    if (base.type === 2) into.dns.push(bytesOf(base, "dNSName subtree").toLowerCase());
    else if (base.type === 6) into.uri.push(bytesOf(base, "URI subtree").toLowerCase());
    else if (base.type === 7) {
      const bytes = Buffer.from(bytesOf(base, "iPAddress subtree"), "binary");
      if (bytes.length !== 8 && bytes.length !== 32) {
        throw new DerError(`an iPAddress subtree has ${bytes.length} bytes, not 8 or 32`);
      }
      const half = bytes.length / 2;
      into.ip.push({ address: bytes.subarray(0, half), mask: bytes.subarray(half) });
    } else unsupported.add(UNCHECKED_NAME_FORMS[base.type] ?? `GeneralName [${base.type}]`);
  }
}

function readNameConstraints(value: string): NameConstraints {
  const sequence = parseAsn1Bytes(value);
  if (!isUniversal(sequence, Type.SEQUENCE))
    throw new DerError("nameConstraints is not a SEQUENCE");
  const permitted = emptySubtrees();
  const excluded = emptySubtrees();
  const unsupported = new Set<string>();
  for (const part of children(sequence, "nameConstraints")) {
    if (part.tagClass !== Class.CONTEXT_SPECIFIC || part.type > 1) {
      throw new DerError(
        "nameConstraints holds something other than [0] permitted or [1] excluded",
      );
    }
    readSubtrees(part, part.type === 0 ? permitted : excluded, unsupported);
  }
  return { permitted, excluded, unsupported: [...unsupported] };
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
    ipAddresses: [],
    nameConstraints: undefined,
    unhandledCriticalExtensions: [],
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
    // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }
    const criticalNode = parts.length === 3 ? parts[1] : undefined;
    if (parts.length > 3 || (parts.length === 3 && !isUniversal(criticalNode, Type.BOOLEAN))) {
      throw new DerError(`extension ${oid} is not (OID, [critical BOOLEAN], OCTET STRING)`);
    }
    const critical =
      criticalNode !== undefined && bytesOf(criticalNode, `extension ${oid} critical`) !== "\x00";
    // RFC 5280: at most one instance of an extension; two SAN extensions could otherwise
    // hide a second identity from a checker that reads only the first.
    if (seen.has(oid)) throw new DerError(`extension ${oid} appears more than once`);
    seen.add(oid);
    const value = bytesOf(valueNode, `extension ${oid}`);
    let processed = PROCESSED_EXTENSIONS.has(oid);
    try {
      if (oid === OID_SUBJECT_ALT_NAME) Object.assign(details, readSubjectAltNames(value));
      if (oid === OID_KEY_USAGE) details.keyUsage = readKeyUsage(value);
      if (oid === OID_BASIC_CONSTRAINTS) Object.assign(details, readBasicConstraints(value));
      if (oid === OID_NAME_CONSTRAINTS) {
        const constraints = readNameConstraints(value);
        details.nameConstraints = constraints;
        // Constraints on a name form we cannot check are not processed either.
        processed = constraints.unsupported.length === 0;
      }
    } catch (error) {
      if (error instanceof DerError) throw error;
      throw new DerError(`extension ${oid} is unreadable: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (critical && !processed) details.unhandledCriticalExtensions.push(oid);
  }
  return details;
}
