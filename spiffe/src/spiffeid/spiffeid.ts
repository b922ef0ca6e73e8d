import { SpiffeError } from "../errors/spiffe-error.js";

/** Which rule of the SPIFFE ID specification an input broke. */
export type SpiffeIdRule =
  | "empty"
  | "wrong-scheme"
  | "missing-trust-domain"
  | "bad-trust-domain-char"
  | "bad-path-char"
  | "empty-segment"
  | "dot-segment"
  | "trailing-slash"
  | "has-port"
  | "has-userinfo"
  | "has-query"
  | "has-fragment"
  | "percent-encoded"
  | "missing-path";

/** A SPIFFE ID or trust domain name that breaks a rule of the spec; `code` names the rule. */
export class SpiffeIdError extends SpiffeError {
  /** The rule the input broke. */
  declare readonly code: SpiffeIdRule;
  /** The text that failed to parse. */
  readonly input: string;

  constructor(rule: SpiffeIdRule, input: string, detail: string) {
    super(rule, `invalid SPIFFE ID ${JSON.stringify(input)}: ${detail}`);
    this.input = input;
  }
}

const SCHEME = "spiffe://";
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_CHAR = /^[A-Za-z0-9._-]$/;

function checkTrustDomainName(name: string, input: string): void {
  if (name === "") {
    throw new SpiffeIdError("missing-trust-domain", input, "the trust domain is empty");
  }
  // User info comes before any port in a URI authority, so name it first.
  if (name.includes("@")) {
    throw new SpiffeIdError("has-userinfo", input, "a trust domain may not carry user info");
  }
  for (const ch of name) {
    if (TRUST_DOMAIN_CHAR.test(ch)) continue;
    if (ch === ":") {
      throw new SpiffeIdError("has-port", input, "a trust domain may not carry a port");
    }
    if (ch === "%") {
      throw new SpiffeIdError("percent-encoded", input, "percent-encoding is not allowed");
    }
    throw new SpiffeIdError(
      "bad-trust-domain-char",
      input,
      `the trust domain may only hold lower-case letters, digits, '.', '-' and '_', not ${JSON.stringify(ch)}`,
    );
  }
}

function checkPath(path: string, input: string): void {
  if (path === "") return;
  // The path starts with "/" (the caller splits there), so segment 0 is always empty.
  const segments = path.split("/").slice(1);
  segments.forEach((segment, index) => {
    if (segment === "") {
      if (index === segments.length - 1) {
        throw new SpiffeIdError("trailing-slash", input, "the path may not end with '/'");
      }
      throw new SpiffeIdError("empty-segment", input, "the path has an empty segment ('//')");
    }
    if (segment === "." || segment === "..") {
      throw new SpiffeIdError("dot-segment", input, `the path may not hold a '${segment}' segment`);
    }
    for (const ch of segment) {
      if (PATH_CHAR.test(ch)) continue;
      if (ch === "%") {
        throw new SpiffeIdError("percent-encoded", input, "percent-encoding is not allowed");
      }
      if (ch === "?") {
        throw new SpiffeIdError("has-query", input, "a query ('?') is not allowed");
      }
      if (ch === "#") {
        throw new SpiffeIdError("has-fragment", input, "a fragment ('#') is not allowed");
      }
      throw new SpiffeIdError(
        "bad-path-char",
        input,
        `path segments may only hold letters, digits, '.', '-' and '_', not ${JSON.stringify(ch)}`,
      );
    }
  });
}

/** A SPIFFE trust domain such as `broker.org`. Immutable; compare with `equals`. */
export class TrustDomain {
  /** The bare name, e.g. `broker.org`. */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /**
   * Accepts a bare name (`broker.org`) or a trust domain ID (`spiffe://broker.org`);
   * anything else, including an ID with a path, is rejected with a SpiffeIdError.
   */
  static parse(text: string): TrustDomain {
    if (text.includes("://")) {
      const id = parseSpiffeIdAllowingRoot(text);
      if (id.path !== "") {
        throw new SpiffeIdError(
          "missing-trust-domain",
          text,
          "expected a trust domain, got a SPIFFE ID with a path",
        );
      }
      return id.trustDomain;
    }
    if (text === "") throw new SpiffeIdError("empty", text, "the trust domain is empty");
    checkTrustDomainName(text, text);
    return new TrustDomain(text);
  }

  /** `spiffe://<name>`: the form used as bundle map keys on the Workload API. */
  idString(): string {
    return `${SCHEME}${this.name}`;
  }

  /** Whether `other` names the same trust domain. */
  equals(other: TrustDomain): boolean {
    return this.name === other.name;
  }

  /** The trust domain's name, e.g. `example.org`. */
  toString(): string {
    return this.name;
  }

  /** @internal used by the ID parser, which has already checked the name. */
  static fromCheckedName(name: string): TrustDomain {
    return new TrustDomain(name);
  }
}

/** A SPIFFE ID `spiffe://<trust domain><path>`. Immutable; compare with `equals`. */
export class SpiffeId {
  /** The trust domain the ID belongs to. */
  readonly trustDomain: TrustDomain;
  /** Either empty (the trust domain's own ID) or `/seg/seg...`. */
  readonly path: string;

  private constructor(trustDomain: TrustDomain, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
  }

  /** @internal */
  static fromParts(trustDomain: TrustDomain, path: string): SpiffeId {
    return new SpiffeId(trustDomain, path);
  }

  /** True when the ID belongs to `trustDomain`. */
  memberOf(trustDomain: TrustDomain): boolean {
    return this.trustDomain.equals(trustDomain);
  }

  /** Whether `other` is the same ID (trust domain and path). */
  equals(other: SpiffeId): boolean {
    return this.trustDomain.equals(other.trustDomain) && this.path === other.path;
  }

  /** The ID as a URI, e.g. `spiffe://example.org/workload`. */
  toString(): string {
    return `${SCHEME}${this.trustDomain.name}${this.path}`;
  }

  /** The ID as a URI, so JSON and structured logs show the text. */
  toJSON(): string {
    return this.toString();
  }
}

function parseSpiffeIdAllowingRoot(input: string): SpiffeId {
  if (input === "") throw new SpiffeIdError("empty", input, "the ID is empty");
  if (!input.startsWith(SCHEME)) {
    throw new SpiffeIdError(
      "wrong-scheme",
      input,
      "a SPIFFE ID starts with 'spiffe://' (scheme in lower case)",
    );
  }
  const rest = input.slice(SCHEME.length);
  const pathStart = rest.search(/[/?#]/);
  const name = pathStart === -1 ? rest : rest.slice(0, pathStart);
  const tail = pathStart === -1 ? "" : rest.slice(pathStart);
  checkTrustDomainName(name, input);
  if (tail.startsWith("?"))
    throw new SpiffeIdError("has-query", input, "a query ('?') is not allowed");
  if (tail.startsWith("#")) {
    throw new SpiffeIdError("has-fragment", input, "a fragment ('#') is not allowed");
  }
  checkPath(tail, input);
  return SpiffeId.fromParts(TrustDomain.fromCheckedName(name), tail);
}

/**
 * Parses a SPIFFE ID and enforces every rule of the specification. The trust domain's
 * own ID (`spiffe://broker.org`, no path) is accepted; use `parseWorkloadId` where a
 * workload identity, which must have a path, is expected.
 */
export function parseSpiffeId(text: string): SpiffeId {
  return parseSpiffeIdAllowingRoot(text);
}

/** Parses a SPIFFE ID that names a workload: like `parseSpiffeId`, and the path is required. */
export function parseWorkloadId(text: string): SpiffeId {
  const id = parseSpiffeIdAllowingRoot(text);
  if (id.path === "") {
    throw new SpiffeIdError(
      "missing-path",
      text,
      "a workload's SPIFFE ID needs a path, e.g. spiffe://example.org/service",
    );
  }
  return id;
}
