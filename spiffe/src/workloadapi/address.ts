import { isIPv4, isIPv6 } from "node:net";
import { SpiffeError } from "../errors/spiffe-error.js";

/**
 * A Workload API address that breaks the SPIFFE Workload Endpoint rules. `code` names the
 * problem: "missing", "empty", "not-a-uri", "bad-scheme", "unix-authority",
 * "unix-relative-path", "unix-path", "unix-extra", "tcp-path", "tcp-extra", "tcp-not-ip"
 * or "tcp-port".
 */
export class EndpointAddressError extends SpiffeError {}

/** The environment variable the SPIFFE Workload Endpoint spec names. */
export const ENDPOINT_SOCKET_ENV = "SPIFFE_ENDPOINT_SOCKET";

const EXAMPLES = "e.g. unix:///tmp/agent.sock or tcp://127.0.0.1:8081";

function fail(code: string, address: string, problem: string): never {
  throw new EndpointAddressError(
    code,
    `invalid Workload API address ${JSON.stringify(address)}: ${problem} (${EXAMPLES})`,
  );
}

/**
 * A Workload API address that follows the SPIFFE Workload Endpoint rules, parsed once:
 * the client dials its `grpcTarget`, the problem classifier probes its `socketPath`, and
 * services keep it as their `--socket` value. Prints as the address it was written as.
 */
export class WorkloadApiAddress {
  /** The address as written, e.g. `unix:///tmp/agent.sock` or `tcp://127.0.0.1:8081`. */
  readonly address: string;
  /** What gRPC dials: `unix:///abs/path`, `ipv4:<ip>:<port>` or `ipv6:[<ip>]:<port>`. */
  readonly grpcTarget: string;
  /** The socket's path for a `unix:` address (%-escapes decoded); undefined for `tcp:`. */
  readonly socketPath: string | undefined;

  private constructor(address: string, grpcTarget: string, socketPath: string | undefined) {
    this.address = address;
    this.grpcTarget = grpcTarget;
    this.socketPath = socketPath;
  }

  /**
   * Checks `address` (`unix:///abs/path` or `tcp://<ip>:<port>`). A malformed one throws
   * an EndpointAddressError saying what is wrong and what a valid one looks like.
   * `unix:/abs/path` (no authority at all) is accepted too: the spec only forbids an
   * authority, and `unix:///abs/path` is the same URI with an empty one.
   */
  static parse(address: string): WorkloadApiAddress {
    const parsed = parseTarget(address);
    return parsed.kind === "unix"
      ? new WorkloadApiAddress(address, `unix://${parsed.path}`, parsed.path)
      : new WorkloadApiAddress(address, parsed.target, undefined);
  }

  /**
   * The address in SPIFFE_ENDPOINT_SOCKET. Throws an EndpointAddressError when it is unset
   * ("missing"), empty ("empty") or malformed (the message then names the variable).
   */
  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): WorkloadApiAddress {
    const text = env[ENDPOINT_SOCKET_ENV];
    if (text === undefined) {
      throw new EndpointAddressError(
        "missing",
        `no Workload API address: pass one explicitly or set ${ENDPOINT_SOCKET_ENV} (${EXAMPLES})`,
      );
    }
    if (text === "") {
      throw new EndpointAddressError(
        "empty",
        `${ENDPOINT_SOCKET_ENV} is set but empty; set it to the agent's socket (${EXAMPLES})`,
      );
    }
    try {
      return WorkloadApiAddress.parse(text);
    } catch (error) {
      if (!(error instanceof EndpointAddressError)) throw error;
      throw new EndpointAddressError(error.code, `${ENDPOINT_SOCKET_ENV}: ${error.message}`);
    }
  }

  /** The address as written. */
  toString(): string {
    return this.address;
  }

  /** The address as written, so structured logs show the text. */
  toJSON(): string {
    return this.address;
  }
}

/**
 * The address to use: `address` itself when it is already parsed, parsed when it is text,
 * and SPIFFE_ENDPOINT_SOCKET from `env` when it is undefined (see WorkloadApiAddress).
 */
export function resolveEndpointAddress(
  address: string | WorkloadApiAddress | undefined,
  env: NodeJS.ProcessEnv = process.env,
): WorkloadApiAddress {
  if (address instanceof WorkloadApiAddress) return address;
  if (address === undefined) return WorkloadApiAddress.fromEnvironment(env);
  return WorkloadApiAddress.parse(address);
}

type ParsedTarget = { kind: "unix"; path: string } | { kind: "tcp"; target: string };

function parseTarget(address: string): ParsedTarget {
  if (address === "") fail("empty", address, "the address is empty");
  if (address.trim() !== address) fail("not-a-uri", address, "it has leading or trailing spaces");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(address)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const hint = address.startsWith("/") ? `; a socket path is written unix://${address}` : "";
    fail("not-a-uri", address, `it has no scheme${hint}`);
  }
  if (scheme === "unix") return { kind: "unix", path: unixSocketPath(address) };
  if (scheme === "tcp") return { kind: "tcp", target: tcpTarget(address) };
  return fail(
    "bad-scheme",
    address,
    `the scheme must be unix or tcp, not ${JSON.stringify(scheme)}`,
  );
}

function unixSocketPath(address: string): string {
  const rest = address.slice("unix:".length);
  if (rest === "//") fail("unix-relative-path", address, "the socket path is missing");
  if (rest.startsWith("//") && !rest.startsWith("///")) {
    fail(
      "unix-authority",
      address,
      "a unix: address must not have an authority (host); write unix:///abs/path with three slashes",
    );
  }
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    fail("not-a-uri", address, "it is not a URI");
  }
  if (url.search !== "" || url.hash !== "") {
    fail("unix-extra", address, "a unix: address must not have a query or fragment");
  }
  if (!url.pathname.startsWith("/")) {
    fail("unix-relative-path", address, "the socket path must be absolute");
  }
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return fail("unix-path", address, "the socket path has a broken %-escape");
  }
  if (path.endsWith("/")) {
    fail("unix-path", address, "the socket path names a directory, not a socket");
  }
  return path;
}

// Parsed by hand rather than with URL(), which silently normalises ports and drops
// out-of-range ones with a generic "Invalid URL".
function tcpTarget(address: string): string {
  const rest = address.slice("tcp:".length);
  if (!rest.startsWith("//")) fail("not-a-uri", address, "a tcp: address is tcp://<ip>:<port>");
  const afterSlashes = rest.slice(2);
  const authorityEnd = afterSlashes.search(/[/?#]/);
  const authority = authorityEnd === -1 ? afterSlashes : afterSlashes.slice(0, authorityEnd);
  const tail = authorityEnd === -1 ? "" : afterSlashes.slice(authorityEnd);
  if (tail.startsWith("/")) {
    fail("tcp-path", address, "a tcp: address must not have a path (not even a trailing '/')");
  }
  if (tail !== "") fail("tcp-extra", address, "a tcp: address must not have a query or fragment");
  if (authority.includes("@")) fail("tcp-extra", address, "a tcp: address must not have user info");

  let host: string;
  let portText: string | undefined;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    host = close === -1 ? authority : authority.slice(1, close);
    const after = close === -1 ? "" : authority.slice(close + 1);
    portText = after.startsWith(":") ? after.slice(1) : after === "" ? undefined : after;
    if (close === -1 || !isIPv6(host)) {
      fail("tcp-not-ip", address, `the host must be an IP address, not ${JSON.stringify(host)}`);
    }
  } else {
    const colon = authority.lastIndexOf(":");
    host = colon === -1 ? authority : authority.slice(0, colon);
    portText = colon === -1 ? undefined : authority.slice(colon + 1);
    if (host === "") fail("tcp-not-ip", address, "the host is missing");
    if (!isIPv4(host)) {
      fail("tcp-not-ip", address, `the host must be an IP address, not ${JSON.stringify(host)}`);
    }
  }
  if (portText === undefined || portText === "") fail("tcp-port", address, "the port is missing");
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : 0;
  if (port < 1 || port > 65535) {
    fail("tcp-port", address, `the port must be a number 1-65535, not ${JSON.stringify(portText)}`);
  }
  return authority.startsWith("[") ? `ipv6:[${host}]:${port}` : `ipv4:${host}:${port}`;
}
