import "reflect-metadata";
import { webcrypto, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { X509Bundle } from "../bundle/x509bundle.js";
import { TrustDomain } from "../spiffeid/spiffeid.js";
import { X509Svid } from "../x509svid/index.js";

/** Test-only certificate authority: makes SVIDs, including deliberately broken ones. */

x509.cryptoProvider.set(webcrypto as unknown as webcrypto.Crypto);

/** The key types a TestCa can make: the ones SPIRE issues. */
export type KeyAlgorithm = "ec-p256" | "rsa-2048";

/** An extension added as given (see testing/extensions.ts for ready-made ones). */
export interface ExtraExtension {
  /** The extension's OID, dotted. */
  oid: string;
  /** Whether a verifier that does not process it must refuse the certificate. */
  critical: boolean;
  /** DER of the extnValue contents. */
  value: Uint8Array;
}

function extraExtensions(extra: readonly ExtraExtension[] | undefined): x509.Extension[] {
  return (extra ?? []).map((e) => new x509.Extension(e.oid, e.critical, Buffer.from(e.value)));
}

/** How TestCa#issue makes a leaf: by default a valid SVID, each knob breaks one rule. */
export interface IssueOptions {
  /** Default: the issuing CA's own algorithm. */
  keyAlgorithm?: KeyAlgorithm;
  /** Start of validity (default: a minute ago). */
  notBefore?: Date;
  /** End of validity (default: an hour from now). */
  notAfter?: Date;
  /** URI SANs; default [the SPIFFE ID]. Use to make none, two, or a non-spiffe one. */
  uris?: string[];
  /** DNS SANs (default none). */
  dnsNames?: string[];
  /** basicConstraints cA (default false). */
  isCa?: boolean;
  /**
   * keyUsage bits; default digitalSignature only (as SPIRE issues). With every bit false
   * the keyUsage extension is left out altogether.
   */
  keyUsage?: {
    /** Signing (what an SVID leaf needs). */
    digitalSignature?: boolean;
    /** Signing certificates (what an SVID leaf must not have). */
    keyCertSign?: boolean;
    /** Signing CRLs (what an SVID leaf must not have). */
    cRLSign?: boolean;
  };
  /**
   * URIs for a second subjectAltName extension. RFC 5280 forbids repeating an extension;
   * this makes such a malformed certificate, where a checker reading only one SAN
   * extension would miss an identity.
   */
  secondSanExtensionUris?: string[];
  /**
   * A forged signature: the leaf still names this CA as its issuer (subject name and
   * authority key identifier), but is signed with `forger`'s key. Only the signature
   * check can tell it from a real one.
   */
  forgeSignatureWith?: TestCa;
  /** Subject name (default "CN=svid,O=TestCa"); "" makes an empty subject. */
  subject?: string;
  /** Mark the subjectAltName extension critical (as with an empty subject). */
  sanCritical?: boolean;
  /** More extensions, e.g. an unknown critical one. */
  extensions?: ExtraExtension[];
}

/** Knobs for intermediates, so broken intermediates can be tested too. */
export interface IntermediateOptions {
  /** Default: the parent's algorithm. */
  keyAlgorithm?: KeyAlgorithm;
  /** Start of validity (default: a minute ago). */
  notBefore?: Date;
  /** End of validity (default: a day from now). */
  notAfter?: Date;
  /** basicConstraints cA (default true); keyUsage keeps keyCertSign either way. */
  isCa?: boolean;
  /** basicConstraints pathLenConstraint (default: none). */
  pathLength?: number;
  /** As IssueOptions.forgeSignatureWith: names this CA, signed with `forger`'s key. */
  forgeSignatureWith?: TestCa;
  /** More extensions, e.g. name constraints. */
  extensions?: ExtraExtension[];
  /** URI SANs (default [spiffe://<trust domain>]). */
  uris?: string[];
  /**
   * Subject name (default: numbered, so each differs). The parent's `subjectName` makes a
   * self-issued CA certificate, as a CA renewing its key issues.
   */
  subject?: string;
}

/** A leaf TestCa#issue made, in the forms tests need. */
export interface IssuedSvid {
  /** Leaf first, then this CA's intermediates (not the root). */
  certificates: X509Certificate[];
  /** Concatenated DER of `certificates`, as the Workload API sends x509_svid. */
  chainDer: Buffer;
  /** PKCS#8 DER, as the Workload API sends x509_svid_key. */
  keyDer: Buffer;
  /** Parsed (only valid when the leaf has exactly one SPIFFE URI SAN). */
  svid(): X509Svid;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

function keyGenParams(
  algorithm: KeyAlgorithm,
): webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams {
  if (algorithm === "ec-p256") return { name: "ECDSA", namedCurve: "P-256" };
  return {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  };
}

/** The signature algorithm follows the signer's key, not the subject's. */
function signingAlgorithm(algorithm: KeyAlgorithm): webcrypto.Algorithm | webcrypto.EcdsaParams {
  if (algorithm === "ec-p256") return { name: "ECDSA", hash: "SHA-256" } as webcrypto.EcdsaParams;
  return { name: "RSASSA-PKCS1-v1_5" };
}

async function generateKeys(algorithm: KeyAlgorithm): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(keyGenParams(algorithm), true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
}

// RSA-2048 generation takes a few hundred milliseconds on a busy machine, so every RSA
// leaf in the process shares one key pair. That is harmless for chain tests; CA keys are
// always fresh, since a CA sharing another CA's key would let one vouch for the other.
/** Numbers intermediates so that every one has its own subject name. */
let intermediateCount = 0;

let sharedRsaLeafKeys: Promise<webcrypto.CryptoKeyPair> | undefined;

function leafKeys(algorithm: KeyAlgorithm): Promise<webcrypto.CryptoKeyPair> {
  if (algorithm === "ec-p256") return generateKeys(algorithm);
  sharedRsaLeafKeys ??= generateKeys(algorithm);
  return sharedRsaLeafKeys;
}

function toNode(cert: x509.X509Certificate): X509Certificate {
  return new X509Certificate(Buffer.from(cert.rawData));
}

function keyUsageFlags(usage: IssueOptions["keyUsage"]): number {
  const wanted = usage ?? { digitalSignature: true };
  let flags = 0;
  if (wanted.digitalSignature) flags |= x509.KeyUsageFlags.digitalSignature;
  if (wanted.keyCertSign) flags |= x509.KeyUsageFlags.keyCertSign;
  if (wanted.cRLSign) flags |= x509.KeyUsageFlags.cRLSign;
  return flags;
}

/** A SPIRE-shaped self-signed root certificate for `keys`. */
async function selfSignedRoot(
  trustDomain: string,
  keyAlgorithm: KeyAlgorithm,
  keys: webcrypto.CryptoKeyPair,
  validity: { notBefore?: Date; notAfter?: Date; extensions?: ExtraExtension[] },
): Promise<x509.X509Certificate> {
  const now = Date.now();
  return x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${trustDomain} root,O=TestCa`,
    keys,
    notBefore: validity.notBefore ?? new Date(now - MINUTE_MS),
    notAfter: validity.notAfter ?? new Date(now + DAY_MS),
    signingAlgorithm: signingAlgorithm(keyAlgorithm),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...extraExtensions(validity.extensions),
    ],
  });
}

/**
 * A certificate authority for tests: a trust domain's root (or an intermediate below one)
 * that issues SVIDs, valid ones and ones broken on purpose, and gives its bundle.
 */
export class TestCa {
  /** The trust domain's name, e.g. `example.org`. */
  readonly trustDomain: string;
  /** The key type of this CA (and, by default, of what it issues). */
  readonly keyAlgorithm: KeyAlgorithm;
  private readonly keys: webcrypto.CryptoKeyPair;
  private readonly ownCert: x509.X509Certificate;
  private readonly nodeCert: X509Certificate;
  /** This CA's certificate and its parents' up to, not including, the root. */
  private readonly intermediates: X509Certificate[];
  private readonly root: X509Certificate;

  private constructor(
    trustDomain: string,
    keyAlgorithm: KeyAlgorithm,
    keys: webcrypto.CryptoKeyPair,
    cert: x509.X509Certificate,
    parent: TestCa | undefined,
  ) {
    this.trustDomain = trustDomain;
    this.keyAlgorithm = keyAlgorithm;
    this.keys = keys;
    this.ownCert = cert;
    this.nodeCert = toNode(cert);
    this.intermediates = parent ? [this.nodeCert, ...parent.intermediates] : [];
    this.root = parent ? parent.root : this.nodeCert;
  }

  /**
   * A self-signed root for `trustDomain` (e.g. "broker.org"), shaped like SPIRE's: URI SAN
   * spiffe://<trust domain>, cA true, keyCertSign + cRLSign. Two roots made for the same
   * trust domain have the same subject name but different keys (handy for forgery tests).
   * Valid from a minute ago for a day unless `validity` says otherwise.
   */
  static async create(
    trustDomain: string,
    keyAlgorithm: KeyAlgorithm = "ec-p256",
    validity: { notBefore?: Date; notAfter?: Date; extensions?: ExtraExtension[] } = {},
  ): Promise<TestCa> {
    const keys = await generateKeys(keyAlgorithm);
    const cert = await selfSignedRoot(trustDomain, keyAlgorithm, keys, validity);
    return new TestCa(trustDomain, keyAlgorithm, keys, cert, undefined);
  }

  /**
   * Another self-signed certificate for this root, with the same name and key (as when a
   * CA renews its certificate but keeps its key). Each such copy "issued" every other.
   */
  async reissue(): Promise<X509Certificate> {
    if (this.root !== this.nodeCert) throw new Error("TestCa.reissue: only a root can reissue");
    return toNode(await selfSignedRoot(this.trustDomain, this.keyAlgorithm, this.keys, {}));
  }

  /** This CA's own certificate. */
  get certificate(): X509Certificate {
    return this.nodeCert;
  }

  /** This CA's subject name, in the form the `subject` options take. */
  get subjectName(): string {
    return this.ownCert.subject;
  }

  /** The root at the top of this CA's chain (itself for a root). */
  get rootCertificate(): X509Certificate {
    return this.root;
  }

  /** Root certificate(s) as the trust domain's bundle. */
  bundle(): X509Bundle {
    return new X509Bundle(TrustDomain.parse(this.trustDomain), [this.root]);
  }

  /** Concatenated DER of the bundle, as the Workload API sends it. */
  bundleDer(): Buffer {
    return Buffer.from(this.root.raw);
  }

  /** The key that signs what this CA issues: its own, or a forger's. */
  private signer(forger: TestCa | undefined): {
    signingKey: webcrypto.CryptoKey;
    signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
  } {
    const signing = forger ?? this;
    return {
      signingKey: signing.keys.privateKey,
      signingAlgorithm: signingAlgorithm(signing.keyAlgorithm),
    };
  }

  /** An intermediate CA signed by this one; its SVIDs carry it in their chain. */
  async createIntermediate(options: IntermediateOptions = {}): Promise<TestCa> {
    const keyAlgorithm = options.keyAlgorithm ?? this.keyAlgorithm;
    const keys = await generateKeys(keyAlgorithm);
    const now = Date.now();
    intermediateCount += 1;
    const isCa = options.isCa ?? true;
    const cert = await x509.X509CertificateGenerator.create({
      subject:
        options.subject ?? `CN=${this.trustDomain} intermediate ${intermediateCount},O=TestCa`,
      issuer: this.ownCert.subject,
      publicKey: keys.publicKey,
      ...this.signer(options.forgeSignatureWith),
      notBefore: options.notBefore ?? new Date(now - MINUTE_MS),
      notAfter: options.notAfter ?? new Date(now + DAY_MS),
      extensions: [
        new x509.BasicConstraintsExtension(isCa, isCa ? options.pathLength : undefined, true),
        // keyCertSign even when cA is false, so that only basicConstraints is wrong.
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        new x509.SubjectAlternativeNameExtension(
          (options.uris ?? [`spiffe://${this.trustDomain}`]).map((value) => ({
            type: "url" as const,
            value,
          })),
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
        ...extraExtensions(options.extensions),
      ],
    });
    return new TestCa(this.trustDomain, keyAlgorithm, keys, cert, this);
  }

  /** Issues an SVID for `spiffeId` (a string, so invalid IDs can be tested too). */
  async issue(spiffeId: string, options: IssueOptions = {}): Promise<IssuedSvid> {
    const keyAlgorithm = options.keyAlgorithm ?? this.keyAlgorithm;
    const keys = await leafKeys(keyAlgorithm);
    const now = Date.now();
    const names: x509.JsonGeneralNames = [
      ...(options.uris ?? [spiffeId]).map((value) => ({ type: "url" as const, value })),
      ...(options.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ];
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(options.isCa ?? false, undefined, true),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
    ];
    const flags = keyUsageFlags(options.keyUsage);
    if (flags !== 0) extensions.push(new x509.KeyUsagesExtension(flags, true));
    // An empty SAN extension is invalid DER-wise, so "no URI SAN" leaves it out entirely.
    if (names.length > 0) {
      extensions.push(
        new x509.SubjectAlternativeNameExtension(names, options.sanCritical ?? false),
      );
    }
    extensions.push(...extraExtensions(options.extensions));
    if (options.secondSanExtensionUris) {
      const second = options.secondSanExtensionUris.map((value) => ({
        type: "url" as const,
        value,
      }));
      extensions.push(new x509.SubjectAlternativeNameExtension(second, false));
    }
    const cert = await x509.X509CertificateGenerator.create({
      subject: options.subject ?? "CN=svid,O=TestCa",
      issuer: this.ownCert.subject,
      publicKey: keys.publicKey,
      ...this.signer(options.forgeSignatureWith),
      notBefore: options.notBefore ?? new Date(now - MINUTE_MS),
      notAfter: options.notAfter ?? new Date(now + HOUR_MS),
      extensions,
    });
    const certificates = [toNode(cert), ...this.intermediates];
    const chainDer = Buffer.concat(certificates.map((c) => c.raw));
    const keyDer = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
    return {
      certificates,
      chainDer,
      keyDer,
      svid: () => X509Svid.fromDer(chainDer, keyDer),
    };
  }
}
