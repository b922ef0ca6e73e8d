import { isIP } from "node:net";
import type { GeneralSubtrees, NameConstraints } from "./certinfo.js";

/**
 * RFC 5280 4.2.1.10 name constraints, for the name forms an X.509-SVID path carries:
 * dNSName, uniformResourceIdentifier (its host) and iPAddress. Names of a form the
 * constraints do not mention are not constrained; a form with permitted subtrees must
 * match one of them; no name may match an excluded subtree.
 */

/** The names of one certificate that name constraints apply to. */
export interface ConstrainedNames {
  dnsNames: readonly string[];
  uris: readonly string[];
  ipAddresses: readonly Buffer[];
}

/**
 * A DNS name is within `base` when it is `base` or `base` with labels added on the left;
 * a base starting with "." takes only names with at least one label added (as Go does).
 * The empty base matches every name.
 */
export function dnsWithin(name: string, base: string): boolean {
  const host = name.toLowerCase();
  if (base === "") return true;
  if (base.startsWith(".")) return host.endsWith(base) && host.length > base.length;
  return host === base || host.endsWith(`.${base}`);
}

/**
 * For URIs the constraint applies to the host: a base starting with "." is a domain
 * (one or more labels must be added), any other base is exactly one host.
 */
function uriHostWithin(host: string, base: string): boolean {
  if (base.startsWith(".")) return host.endsWith(base) && host.length > base.length;
  return host === base;
}

function ipWithin(address: Buffer, subtree: { address: Buffer; mask: Buffer }): boolean {
  if (address.length !== subtree.address.length) return false;
  return address.every((byte, i) => {
    const mask = subtree.mask[i] ?? 0;
    return (byte & mask) === ((subtree.address[i] ?? 0) & mask);
  });
}

function formatIp(address: Buffer): string {
  if (address.length === 4) return [...address].join(".");
  const groups: string[] = [];
  for (let i = 0; i < address.length; i += 2) groups.push(address.readUInt16BE(i).toString(16));
  return groups.join(":");
}

/** The URI's host, or a reason why name constraints cannot be checked against it. */
function uriHost(uri: string): { host: string } | { problem: string } {
  let host: string;
  try {
    host = new URL(uri).hostname.toLowerCase();
  } catch {
    return { problem: `URI ${uri} cannot be parsed` };
  }
  // RFC 5280: a URI without a host given as a fully qualified domain name must be refused.
  if (host === "") return { problem: `URI ${uri} has no host` };
  // The URL parser keeps brackets only around an IPv6 address.
  if (host.startsWith("[") || isIP(host) !== 0) {
    return { problem: `URI ${uri} has an IP address, not a domain name, as its host` };
  }
  return { host };
}

/** One name form: the certificate's names of that form and how they match a base. */
interface Form<Name, Base> {
  label: string;
  names: readonly Name[];
  bases: (subtrees: GeneralSubtrees) => readonly Base[];
  within: (name: Name, base: Base) => boolean;
  show: (name: Name) => string;
}

function violation<Name, Base>(
  form: Form<Name, Base>,
  constraints: NameConstraints,
): string | undefined {
  const permitted = form.bases(constraints.permitted);
  const excluded = form.bases(constraints.excluded);
  for (const name of form.names) {
    if (permitted.length > 0 && !permitted.some((base) => form.within(name, base))) {
      return `${form.label} ${form.show(name)} is outside the permitted subtrees`;
    }
    if (excluded.some((base) => form.within(name, base))) {
      return `${form.label} ${form.show(name)} is in an excluded subtree`;
    }
  }
  return undefined;
}

/** Why `names` break `constraints`, or undefined when they comply. */
export function nameConstraintViolation(
  names: ConstrainedNames,
  constraints: NameConstraints,
): string | undefined {
  const hosts: string[] = [];
  const uriConstrained = constraints.permitted.uri.length + constraints.excluded.uri.length > 0;
  if (uriConstrained) {
    for (const uri of names.uris) {
      const parsed = uriHost(uri);
      if ("problem" in parsed) return `${parsed.problem}, so URI name constraints cannot apply`;
      hosts.push(parsed.host);
    }
  }
  return (
    violation(
      {
        label: "DNS name",
        names: names.dnsNames,
        bases: (s) => s.dns,
        within: dnsWithin,
        show: (n) => n,
      },
      constraints,
    ) ??
    violation(
      {
        label: "URI host",
        names: hosts,
        bases: (s) => s.uri,
        within: uriHostWithin,
        show: (n) => n,
      },
      constraints,
    ) ??
    violation(
      {
        label: "IP address",
        names: names.ipAddresses,
        bases: (s) => s.ip,
        within: ipWithin,
        show: formatIp,
      },
      constraints,
    )
  );
}
