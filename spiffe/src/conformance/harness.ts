/**
 * A harness for the public SPIFFE conformance test suite
 * (arndt-s/spiffe-conformance-test-suite, docs/HARNESS_CONTRACT.md, v1): a thin shim that
 * exposes this library to the suite over the network and leaves every SPIFFE decision to
 * the library.
 *
 *   SPIFFE_ENDPOINT_SOCKET=unix:///path/to/agent.sock node spiffe/dist/conformance/harness.js
 *
 * prints SPIFFE_HARNESS_VERSION=1, SPIFFE_X509_PORT=<port>, SPIFFE_CONTROL_PORT=<port> and,
 * once the Workload API has given an X.509-SVID, READY. Logs go to stderr. SIGTERM or
 * SIGINT stops it.
 *
 * - X.509 port: createMtlsTlsServer with the X509Source, authorizing any SPIFFE ID; writes
 *   the client's ID and a newline, then closes. Refused clients get nothing.
 * - Control port (HTTP/1.1, JSON): POST /v1/x509/dial {"address": "host:port"} dials with
 *   connectMtls; POST /v1/jwt/validate {"token", "audience"} validates locally with
 *   parseAndValidateJwtSvid against the JwtSource's bundles; POST /v1/jwt/fetch
 *   {"audience": [...], "spiffe_id"} calls FetchJWTSVID once (no cache, so the suite sees
 *   each call and each refusal); GET /v1/info.
 */
import { readFileSync, realpathSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Server as TlsServer } from "node:tls";
import { pathToFileURL } from "node:url";
import {
  AuthorizationError,
  authorizeAny,
  connectMtls,
  createMtlsTlsServer,
  JwtSource,
  JwtSvidError,
  MtlsError,
  parseAndValidateJwtSvid,
  peerIdOf,
  SpiffeError,
  VerificationError,
  WorkloadApiClient,
  X509Source,
} from "../index.js";
import { messageOf } from "../internal/error-message.js";

export interface HarnessOptions {
  /**
   * Workload API address. The contract wants SPIFFE_ENDPOINT_SOCKET, which is what the
   * library reads when this is left out; tests of the library in this process pass it.
   */
  workloadApiAddress?: string;
  /** Listening ports on 127.0.0.1; default 0, a free port each (as the contract asks). */
  x509Port?: number;
  controlPort?: number;
  /** Each client the X.509 port refused, with the library's reason. */
  onPeerRejected?: (error: Error) => void;
  /** Time allowed for one /v1/x509/dial (default 5000 ms). */
  dialTimeoutMs?: number;
}

export interface Harness {
  readonly x509Port: number;
  readonly controlPort: number;
  /** The library's source: the current SVID and bundles, and their events. */
  readonly source: X509Source;
  /** The library's JWT bundles, which /v1/jwt/validate checks tokens against. */
  readonly jwtSource: JwtSource;
  /** Resolves once the library has an X.509-SVID (the moment to print READY). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** The contract's response envelope. */
interface ControlResponse {
  httpStatus: number;
  body: { status: "ok" | "rejected" | "error" | "unsupported"; [field: string]: unknown };
}

const MAX_REQUEST_BYTES = 64 * 1024;

function listen(server: Server | TlsServer, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server | TlsServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    if ("closeAllConnections" in server) server.closeAllConnections();
  });
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        reject(new Error(`request body over ${MAX_REQUEST_BYTES} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

/** "127.0.0.1:34567" or "[::1]:34567" into host and port. */
function parseDialAddress(address: unknown): { host: string; port: number } {
  if (typeof address !== "string") throw new Error('"address" must be a "host:port" string');
  const match = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !(port >= 1 && port <= 65535)) {
    throw new Error(`"address" must be "host:port", got ${JSON.stringify(address)}`);
  }
  return { host, port };
}

/** A refusal of the peer by the library, as opposed to a failure to try. */
function isRejection(error: unknown): error is SpiffeError {
  return (
    error instanceof VerificationError ||
    error instanceof AuthorizationError ||
    (error instanceof MtlsError && error.code === "no-peer-certificate")
  );
}

function packageVersion(): string {
  try {
    const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}

/** Opens both listeners and starts the library's X509Source; see ready() for READY. */
export async function openHarness(options: HarnessOptions = {}): Promise<Harness> {
  // With no address, the library reads SPIFFE_ENDPOINT_SOCKET (and throws an
  // EndpointAddressError, before any call, when it is missing or malformed).
  const source = new X509Source(
    options.workloadApiAddress === undefined ? {} : { address: options.workloadApiAddress },
  );
  const addressOption =
    options.workloadApiAddress === undefined ? {} : { address: options.workloadApiAddress };
  const jwtSource = new JwtSource(addressOption);
  const jwtClient = new WorkloadApiClient(addressOption);
  const authorizer = authorizeAny();

  const x509Server = createMtlsTlsServer(
    {
      svidSource: source,
      bundleSource: source,
      authorizer,
      onPeerRejected: (error) => options.onPeerRejected?.(error),
    },
    (socket) => {
      socket.on("error", () => {});
      socket.end(`${peerIdOf(socket)?.toString() ?? ""}\n`);
    },
  );

  const dial = async (body: unknown): Promise<ControlResponse> => {
    let target: { host: string; port: number };
    try {
      target = parseDialAddress((body as { address?: unknown } | null)?.address);
    } catch (error) {
      return { httpStatus: 500, body: { status: "error", message: messageOf(error) } };
    }
    try {
      const socket = await connectMtls(
        {
          svidSource: source,
          bundleSource: source,
          authorizer,
          connectTimeoutMs: options.dialTimeoutMs ?? 5000,
        },
        target,
      );
      const peerId = peerIdOf(socket);
      socket.destroy();
      return { httpStatus: 200, body: { status: "ok", spiffe_id: peerId?.toString() ?? "" } };
    } catch (error) {
      if (isRejection(error)) {
        return {
          httpStatus: 422,
          body: { status: "rejected", code: error.code, message: error.message },
        };
      }
      const code = error instanceof SpiffeError ? error.code : undefined;
      return { httpStatus: 500, body: { status: "error", code, message: messageOf(error) } };
    }
  };

  const validate = async (body: unknown): Promise<ControlResponse> => {
    const { token, audience } = (body ?? {}) as { token?: unknown; audience?: unknown };
    if (typeof token !== "string" || typeof audience !== "string") {
      return {
        httpStatus: 500,
        body: { status: "error", message: '"token" and "audience" must be strings' },
      };
    }
    try {
      const svid = await parseAndValidateJwtSvid(token, jwtSource, audience);
      return {
        httpStatus: 200,
        body: { status: "ok", spiffe_id: svid.id.toString(), claims: svid.claims },
      };
    } catch (error) {
      if (error instanceof JwtSvidError) {
        return {
          httpStatus: 422,
          body: { status: "rejected", code: error.code, message: error.message },
        };
      }
      return { httpStatus: 500, body: { status: "error", message: messageOf(error) } };
    }
  };

  const fetchJwt = async (body: unknown): Promise<ControlResponse> => {
    const { audience, spiffe_id } = (body ?? {}) as { audience?: unknown; spiffe_id?: unknown };
    if (!Array.isArray(audience) || !audience.every((entry) => typeof entry === "string")) {
      return {
        httpStatus: 500,
        body: { status: "error", message: '"audience" must be a list of strings' },
      };
    }
    try {
      const svids = await jwtClient.fetchJwtSvids({
        audience,
        ...(typeof spiffe_id === "string" && spiffe_id !== "" ? { spiffeId: spiffe_id } : {}),
      });
      return {
        httpStatus: 200,
        body: {
          status: "ok",
          svids: svids.map((svid) => ({
            spiffe_id: svid.id.toString(),
            token: svid.token,
            hint: svid.hint,
          })),
        },
      };
    } catch (error) {
      const code = error instanceof SpiffeError ? error.code : undefined;
      return { httpStatus: 500, body: { status: "error", code, message: messageOf(error) } };
    }
  };

  const endpoints: Record<string, (body: unknown) => Promise<ControlResponse>> = {
    "/v1/x509/dial": (body) => dial(body),
    "/v1/jwt/validate": validate,
    "/v1/jwt/fetch": fetchJwt,
  };

  const route = async (request: IncomingMessage): Promise<ControlResponse> => {
    const path = new URL(request.url ?? "/", "http://harness").pathname;
    if (path === "/v1/info" && request.method === "GET") {
      return {
        httpStatus: 200,
        body: {
          status: "ok",
          sdk: "spiffe-node",
          sdk_version: packageVersion(),
          language: "typescript",
        },
      };
    }
    const endpoint = Object.hasOwn(endpoints, path) ? endpoints[path] : undefined;
    if (endpoint === undefined) {
      return { httpStatus: 404, body: { status: "error", message: `no endpoint ${path}` } };
    }
    if (request.method !== "POST") {
      return { httpStatus: 405, body: { status: "error", message: `${path} takes POST` } };
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(request));
    } catch (error) {
      const message = `the request body is not JSON: ${messageOf(error)}`;
      return { httpStatus: 500, body: { status: "error", message } };
    }
    return endpoint(body);
  };

  const controlServer = createHttpServer((request, response) => {
    route(request)
      .catch(
        (error): ControlResponse => ({
          httpStatus: 500,
          body: { status: "error", message: messageOf(error) },
        }),
      )
      .then(({ httpStatus, body }) => {
        response.writeHead(httpStatus, { "content-type": "application/json" });
        response.end(JSON.stringify(body));
      });
  });

  const close = async () => {
    source.close();
    jwtSource.close();
    jwtClient.close();
    await Promise.all([closeServer(x509Server), closeServer(controlServer)]);
  };
  try {
    const x509Port = await listen(x509Server, options.x509Port ?? 0);
    const controlPort = await listen(controlServer, options.controlPort ?? 0);
    return { x509Port, controlPort, source, jwtSource, ready: () => source.ready(), close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function main(): Promise<void> {
  let harness: Harness;
  try {
    harness = await openHarness({
      onPeerRejected: (error) => console.error(`x509 port refused a client: ${error.message}`),
    });
  } catch (error) {
    console.error(`harness: cannot start: ${messageOf(error)}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    harness.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write(
    `SPIFFE_HARNESS_VERSION=1\nSPIFFE_X509_PORT=${harness.x509Port}\nSPIFFE_CONTROL_PORT=${harness.controlPort}\n`,
  );
  try {
    await harness.ready();
  } catch (error) {
    // An answer the library will not retry (e.g. INVALID_ARGUMENT): no READY, ever.
    console.error(`harness: no X.509-SVID: ${messageOf(error)}`);
    await harness.close();
    process.exit(1);
  }
  process.stdout.write("READY\n");
}

const invokedAs = process.argv[1];
if (invokedAs !== undefined && pathToFileURL(realpathSync(invokedAs)).href === import.meta.url) {
  void main();
}
