import forge from "node-forge";
import type { ExtraExtension } from "./ca.js";

/** Test-only: DER for extensions the test CA has no ready-made class for. */

const { Class, Type } = forge.asn1;

function der(node: forge.asn1.Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(node).getBytes(), "binary");
}

/** An extension this library knows nothing of (under a private arc), critical or not. */
export function unknownExtension(critical: boolean): ExtraExtension {
  const value = forge.asn1.create(Class.UNIVERSAL, Type.UTF8, false, "conformance");
  return { oid: "1.3.6.1.4.1.55555.1.1", critical, value: der(value) };
}

/** certificatePolicies with anyPolicy: real, but outside what this library processes. */
export function anyPolicyExtension(critical: boolean): ExtraExtension {
  const anyPolicy = forge.asn1.oidToDer("2.5.29.32.0").getBytes();
  const policy = forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    forge.asn1.create(Class.UNIVERSAL, Type.OID, false, anyPolicy),
  ]);
  return {
    oid: "2.5.29.32",
    critical,
    value: der(forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [policy])),
  };
}

/** One side (permitted or excluded) of a nameConstraints extension. */
export interface Subtrees {
  /** dNSName bases, e.g. `example.org`. */
  dns?: string[];
  /** uniformResourceIdentifier hosts, e.g. `example.org` (matches `spiffe://example.org/...`). */
  uri?: string[];
  /** "10.0.0.0/8"-style IPv4 ranges. */
  ipv4?: string[];
  /** rfc822Name bases: a form this library does not check. */
  email?: string[];
  /** registeredID bases (dotted OIDs): another form this library does not check. */
  registeredId?: string[];
}

function ipv4Subtree(cidr: string): string {
  const [address = "", bits = "32"] = cidr.split("/");
  const octets = address.split(".").map(Number);
  const prefix = Number(bits);
  const mask = [0, 1, 2, 3].map((i) => {
    const left = Math.max(0, Math.min(8, prefix - 8 * i));
    return (0xff << (8 - left)) & 0xff;
  });
  return Buffer.from([...octets, ...mask]).toString("binary");
}

function subtrees(tag: number, names: Subtrees): forge.asn1.Asn1 | undefined {
  const bases: [number, string][] = [
    ...(names.email ?? []).map((n): [number, string] => [1, n]),
    ...(names.dns ?? []).map((n): [number, string] => [2, n]),
    ...(names.uri ?? []).map((n): [number, string] => [6, n]),
    ...(names.ipv4 ?? []).map((n): [number, string] => [7, ipv4Subtree(n)]),
    ...(names.registeredId ?? []).map((n): [number, string] => [
      8,
      forge.asn1.oidToDer(n).getBytes(),
    ]),
  ];
  if (bases.length === 0) return undefined;
  return forge.asn1.create(
    Class.CONTEXT_SPECIFIC,
    tag,
    true,
    bases.map(([type, value]) =>
      forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
        forge.asn1.create(Class.CONTEXT_SPECIFIC, type, false, value),
      ]),
    ),
  );
}

/** nameConstraints (critical unless said otherwise, as RFC 5280 requires of a CA). */
export function nameConstraintsExtension(
  constraints: { permitted?: Subtrees; excluded?: Subtrees },
  critical = true,
): ExtraExtension {
  const parts = [
    subtrees(0, constraints.permitted ?? {}),
    subtrees(1, constraints.excluded ?? {}),
  ].filter((part): part is forge.asn1.Asn1 => part !== undefined);
  return {
    oid: "2.5.29.30",
    critical,
    value: der(forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, parts)),
  };
}
