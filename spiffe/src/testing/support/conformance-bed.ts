// The conformance catalogue's test set-up, in process: a fake Workload API that records
// every call, the harness (the library's X509Source, mTLS server and client) on its own
// ports, and the suite's side of each role. Not part of the library's API.

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { type Harness, openHarness } from "../../conformance/harness.js";
import { type IssuedSvid, TestCa } from "../ca.js";
import { type FakeSvid, FakeWorkloadApi, type FakeX509Response } from "../fake-workload-api.js";

export const TD = "example.org";
export const FED_TD = "fed.example.org";
/** The library's own identity in these tests. */
export const OWN_ID = `spiffe://${TD}/harness`;
/** The suite's probe identity (a valid peer from the local trust domain). */
export const PROBE_ID = `spiffe://${TD}/probe`;
export const FED_PROBE_ID = `spiffe://${FED_TD}/probe`;

export type Role = "server" | "client";
export const ROLES: readonly Role[] = ["server", "client"];

/** What the library decided about a peer, seen from the suite's side of the role. */
export interface Outcome {
  accepted: boolean;
  /** The peer ID the library reported (server role: the line it wrote). */
  peerId?: string;
  /** The library's refusal code (VerificationError code, ...). */
  code?: string;
  message?: string;
}

/** An SVID in the shape the fake Workload API sends. */
export function asFakeSvid(issued: IssuedSvid, spiffeId: string, bundle: Buffer): FakeSvid {
  return { spiffeId, chainDer: issued.chainDer, keyDer: issued.keyDer, bundleDer: bundle };
}

/** Polls until `check` holds; fails after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export class Bed {
  readonly ca: TestCa;
  readonly fedCa: TestCa;
  readonly fake: FakeWorkloadApi;
  readonly harness: Harness;
  /** Every refusal the X.509 port reported, in order. */
  readonly serverRejections: Error[];
  /** The library's first SVID. */
  readonly own: IssuedSvid;

  private constructor(
    parts: Pick<Bed, "ca" | "fedCa" | "fake" | "harness" | "own" | "serverRejections">,
  ) {
    this.ca = parts.ca;
    this.fedCa = parts.fedCa;
    this.fake = parts.fake;
    this.harness = parts.harness;
    this.own = parts.own;
    this.serverRejections = parts.serverRejections;
  }

  /**
   * Local CA for example.org, a federated CA for fed.example.org, the fake agent serving
   * the library's SVID with both bundles, and the harness once it is ready.
   */
  static async start(): Promise<Bed> {
    const ca = await TestCa.create(TD);
    const fedCa = await TestCa.create(FED_TD);
    const own = await ca.issue(OWN_ID);
    const fake = await FakeWorkloadApi.start();
    fake.setX509({
      svids: [asFakeSvid(own, OWN_ID, ca.bundleDer())],
      federatedBundles: { [`spiffe://${FED_TD}`]: fedCa.bundleDer() },
    });
    const serverRejections: Error[] = [];
    let harness: Harness | undefined;
    try {
      harness = await openHarness({
        workloadApiAddress: fake.address,
        onPeerRejected: (error) => serverRejections.push(error),
      });
      await harness.source.ready({ timeoutMs: 10_000 });
    } catch (error) {
      await harness?.close();
      await fake.stop();
      throw error;
    }
    return new Bed({ ca, fedCa, fake, harness, own, serverRejections });
  }

  async stop(): Promise<void> {
    await this.harness.close();
    await this.fake.stop();
  }

  /** Pushes a response to the library (the fake keeps it for new streams too). */
  push(response: FakeX509Response): void {
    this.fake.setX509(response);
  }

  /**
   * Pushes a valid response and waits until the library has applied it (its "update"
   * event): the stream is ordered, so everything pushed before has been handled too.
   */
  async pushAndWait(response: FakeX509Response): Promise<void> {
    const applied = once(this.harness.source, "update");
    this.push(response);
    await applied;
  }

  /** The library's SVID with the local bundle and (unless told) the federated one. */
  ownResponse(
    options: { own?: IssuedSvid; localBundle?: Buffer; federated?: boolean } = {},
  ): FakeX509Response {
    return {
      svids: [
        asFakeSvid(options.own ?? this.own, OWN_ID, options.localBundle ?? this.ca.bundleDer()),
      ],
      federatedBundles:
        options.federated === false ? {} : { [`spiffe://${FED_TD}`]: this.fedCa.bundleDer() },
    };
  }

  /** The suite as a client of the X.509 port, presenting `peer` (or no certificate). */
  async probeServer(
    peer: IssuedSvid | undefined,
  ): Promise<Outcome & { presented: X509Certificate[] }> {
    const before = this.serverRejections.length;
    const outcome = await probeX509Port(this.harness.x509Port, peer);
    if (outcome.accepted) return outcome;
    const rejection = this.serverRejections[before];
    const code = (rejection as { code?: string } | undefined)?.code;
    return { ...outcome, code, message: rejection?.message };
  }

  /** The suite as a TLS server presenting `peer`; asks the harness to dial it. */
  dialFromLibrary(peer: IssuedSvid): Promise<Outcome> {
    return dialThroughHarness(this.harness.controlPort, peer);
  }

  /** One role's verdict on `peer`. */
  check(role: Role, peer: IssuedSvid): Promise<Outcome> {
    return role === "server" ? this.probeServer(peer) : this.dialFromLibrary(peer);
  }

  /** A request to the harness's control port. */
  control(method: string, path: string, body?: unknown): Promise<ControlAnswer> {
    return controlRequest(this.harness.controlPort, method, path, body);
  }

  /** The chain the X.509 port presents now (empty when it presents nothing). */
  async presented(): Promise<X509Certificate[]> {
    const probe = await this.ca.issue(PROBE_ID);
    return (await this.probeServer(probe)).presented;
  }

  /** The leaf's ID the X.509 port presents now, or undefined when it presents nothing. */
  async presentedId(): Promise<string | undefined> {
    return (await this.presented())[0]?.subjectAltName?.replace(/^URI:/, "");
  }

  /** Whether the X.509 port presents `svid`'s leaf now. */
  async presents(svid: IssuedSvid): Promise<boolean> {
    const [leaf] = await this.presented();
    return leaf !== undefined && leaf.fingerprint256 === svid.certificates[0]?.fingerprint256;
  }
}

/**
 * OpenSSL's security level 0 on the suite's side only, so it can present what a hostile
 * peer could (a SHA-1 or MD5 signed certificate): the library must refuse those itself.
 */
const PEER_CIPHERS = "DEFAULT:@SECLEVEL=0";

/**
 * The suite's side of the server role: connects to an X.509 port presenting `peer` (or
 * no certificate) and reads the line the harness writes: the peer ID when accepted,
 * nothing when refused. Also returns the chain the port presented.
 */
export async function probeX509Port(
  port: number,
  peer: IssuedSvid | undefined,
): Promise<Outcome & { presented: X509Certificate[] }> {
  const socket = tls.connect({
    host: "127.0.0.1",
    port,
    rejectUnauthorized: false,
    ciphers: PEER_CIPHERS,
    ...(peer ? { cert: pem(peer.certificates), key: keyPem(peer) } : {}),
  });
  let presented: X509Certificate[] = [];
  let text = "";
  socket.on("secureConnect", () => {
    presented = presentedChain(socket);
  });
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8");
  });
  // A refusal may come as a reset: the outcome is read from what arrived before close.
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("close", resolve));
  const line = text.endsWith("\n") ? text.slice(0, -1) : text;
  return line === "" ? { accepted: false, presented } : { accepted: true, peerId: line, presented };
}

/**
 * The suite's side of the client role: a TLS server presenting `peer` (asking for a
 * client certificate it does not check), and /v1/x509/dial asking the harness to dial it.
 */
export async function dialThroughHarness(controlPort: number, peer: IssuedSvid): Promise<Outcome> {
  const server = tls.createServer({
    cert: pem(peer.certificates),
    key: keyPem(peer),
    requestCert: true,
    rejectUnauthorized: false,
    ciphers: PEER_CIPHERS,
  });
  server.on("secureConnection", (socket) => socket.on("error", () => {}));
  server.on("tlsClientError", () => {});
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  try {
    const { status, body } = await controlRequest(controlPort, "POST", "/v1/x509/dial", {
      address: `127.0.0.1:${port}`,
    });
    if (status === 200) {
      assert.equal(body.status, "ok");
      return { accepted: true, peerId: String(body.spiffe_id) };
    }
    assert.equal(status, 422, `dial answered ${status}: ${JSON.stringify(body)}`);
    assert.equal(body.status, "rejected");
    return { accepted: false, code: String(body.code), message: String(body.message) };
  } finally {
    server.close();
  }
}

export interface ControlAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** One JSON request to a harness's control port. */
export function controlRequest(
  port: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: "127.0.0.1", port, method, path }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
      });
      response.on("end", () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) });
        } catch (error) {
          reject(error);
        }
      });
    });
    request.on("error", reject);
    if (body !== undefined) request.setHeader("content-type", "application/json");
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export function pem(certificates: readonly X509Certificate[]): string {
  return certificates.map((certificate) => certificate.toString()).join("");
}

export function keyPem(peer: IssuedSvid): string {
  const body = peer.keyDer.toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

/** The chain the server sent, leaf first, as Node links it. */
function presentedChain(socket: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<unknown>();
  let current: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (current?.raw && !seen.has(current)) {
    seen.add(current);
    chain.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return chain;
}

/** EP-2: every call the fake recorded carried `workload.spiffe.io: true`, and only that. */
export function assertEveryCallCarriedHeader(fake: FakeWorkloadApi): void {
  assert.ok(fake.calls.length > 0, "no Workload API call was recorded");
  for (const [index, call] of fake.calls.entries()) {
    assert.deepEqual(call.metadata.get("workload.spiffe.io"), ["true"], `call #${index + 1}`);
  }
}

/** The calls of one method, in order. */
export function callsOf(fake: FakeWorkloadApi, method: "FetchX509SVID" | "FetchX509Bundles") {
  return fake.calls.filter((call) => call.method === method);
}

/**
 * The catalogue's methodology for a negative case: the same harness first accepts a
 * valid counterpart (`control`), then refuses `peer` with `code`.
 */
export async function expectRejected(
  bed: Bed,
  role: Role,
  control: IssuedSvid,
  peer: IssuedSvid,
  code: string,
): Promise<Outcome> {
  const positive = await bed.check(role, control);
  assert.equal(positive.accepted, true, `positive control refused: ${positive.message}`);
  const outcome = await bed.check(role, peer);
  assert.equal(outcome.accepted, false, `accepted ${outcome.peerId}, expected a refusal`);
  assert.equal(outcome.code, code, outcome.message);
  return outcome;
}

/** A positive case: `peer` is accepted and reported as `id`. */
export async function expectAccepted(bed: Bed, role: Role, peer: IssuedSvid, id: string) {
  const outcome = await bed.check(role, peer);
  assert.equal(outcome.accepted, true, `refused (${outcome.code}): ${outcome.message}`);
  assert.equal(outcome.peerId, id);
}
