import { constants } from "node:crypto";
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import { asError } from "../internal/error-message.js";
import type { X509SvidSource } from "../x509svid/source.js";
import type { X509Svid } from "../x509svid/svid.js";
import { MtlsError } from "./errors.js";

/**
 * TLS settings shared by both sides. `ca: []` keeps Node from loading its public root
 * store: SPIFFE trust comes only from the bundle source, checked by us after the
 * handshake, and an empty store also keeps getPeerCertificate(true) from extending the
 * peer's chain with certificates the peer never sent. Session tickets are off so the
 * server never resumes a session authenticated under trust that may since have changed.
 * TLS 1.2 renegotiation is refused: the peer is verified once, after the first
 * handshake, and a renegotiation could swap its certificate unseen.
 */
const BASE_OPTIONS: SecureContextOptions = {
  ca: [],
  minVersion: "TLSv1.2",
  secureOptions: constants.SSL_OP_NO_TICKET | constants.SSL_OP_NO_RENEGOTIATION,
};

/** The TLS options presenting `svid`: chain (leaf first) and private key as PEM. */
export function svidContextOptions(svid: X509Svid): SecureContextOptions {
  return { ...BASE_OPTIONS, cert: svid.certificatesPem(), key: svid.privateKeyPem() };
}

/** TLS options without a certificate, for a server created before its first SVID. */
export function noSvidContextOptions(): SecureContextOptions {
  return { ...BASE_OPTIONS };
}

/** The source's current SVID, or an MtlsError saying there is none to present. */
export function currentSvid(source: X509SvidSource): X509Svid {
  let svid: X509Svid | undefined;
  try {
    svid = source.getX509Svid();
  } catch (thrown) {
    throw new MtlsError("no-svid", `the SVID source failed: ${asError(thrown).message}`, {
      cause: thrown,
    });
  }
  if (svid === undefined) {
    throw new MtlsError(
      "no-svid",
      "no X.509-SVID to present: the SVID source has none (not received from the Workload API yet, or withdrawn); refusing the TLS handshake",
    );
  }
  return svid;
}

/**
 * Remembers the SVID last turned into TLS settings, so a context is rebuilt only when the
 * source hands out a different SVID (a rotating source returns a new object; a source may
 * also return a new but identical object, which costs no rebuild).
 */
export class SvidTracker<T> {
  private installed: { svid: X509Svid; value: T } | undefined;
  private readonly build: (svid: X509Svid) => T;

  constructor(build: (svid: X509Svid) => T) {
    this.build = build;
  }

  /** The value for `svid`, built afresh only when it differs from the last one. */
  update(svid: X509Svid): T {
    if (this.installed?.svid.equals(svid)) {
      // Keep the newest object so the next call can take the identity fast path.
      this.installed.svid = svid;
      return this.installed.value;
    }
    const value = this.build(svid);
    this.installed = { svid, value };
    return value;
  }
}

/** Client side: one SecureContext per distinct SVID, reused across connections. */
export function clientContexts(): SvidTracker<SecureContext> {
  return new SvidTracker((svid) => createSecureContext(svidContextOptions(svid)));
}
