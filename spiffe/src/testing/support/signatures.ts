// Certificates signed with algorithms WebCrypto cannot make. Not part of the library's API.

import { X509Certificate } from "node:crypto";
import type { IssuedSvid } from "../ca.js";

/** The DER of the OID sha256WithRSAEncryption (1.2.840.113549.1.1.11). */
const SHA256_WITH_RSA = Buffer.from("06092a864886f70d01010b", "hex");

/**
 * `issued` (from an RSA CA) with its leaf relabelled as signed with another
 * PKCS#1 algorithm of the same arc, 1.2.840.113549.1.1.<last> (4: md5WithRSAEncryption),
 * in both places a certificate names it. The signature no longer verifies, which does not
 * matter: the algorithm is refused before any signature is checked.
 */
export function relabelLeafSignature(issued: IssuedSvid, last: number): IssuedSvid {
  const [leaf, ...rest] = issued.certificates;
  if (leaf === undefined) throw new Error("relabelLeafSignature: no leaf");
  const der = Buffer.from(leaf.raw);
  const replacement = Buffer.from(SHA256_WITH_RSA);
  replacement[replacement.length - 1] = last;
  let found = 0;
  for (let at = der.indexOf(SHA256_WITH_RSA); at >= 0; at = der.indexOf(SHA256_WITH_RSA, at + 1)) {
    replacement.copy(der, at);
    found += 1;
  }
  if (found !== 2) throw new Error(`relabelLeafSignature: found the OID ${found} times, not 2`);
  const certificates = [new X509Certificate(der), ...rest];
  return {
    ...issued,
    certificates,
    chainDer: Buffer.concat(certificates.map((c) => c.raw)),
  };
}
