// What the fuzz tests feed and what they expect: every reader of outside bytes, given
// mutated real inputs and random ones, either returns or throws the library's own typed
// error; never another exception, never a hang, never unbounded memory.

import fc from "fast-check";
import { BundleError, X509Bundle, X509BundleSet } from "../bundle/x509bundle.js";
import type { SpiffeError } from "../errors/spiffe-error.js";
import { certificateDetails } from "../internal/certinfo.js";
import { DerError, parseDerCertificates } from "../internal/der.js";
import { parseSpiffeId, SpiffeIdError, TrustDomain } from "../spiffeid/spiffeid.js";
import {
  toRawX509BundlesResponse,
  toRawX509SvidResponse,
  workloadApiMethod,
} from "../workloadapi/proto.js";
import {
  MalformedResponseError,
  parseX509Bundles,
  parseX509Context,
} from "../workloadapi/responses.js";
import { SvidError, X509Svid } from "../x509svid/svid.js";
import { VerificationError, verifyX509Svid } from "../x509svid/verify.js";
import * as corpus from "./corpus.js";

/** One reader under test: the input it takes and the errors it may throw. */
export interface FuzzTarget<T> {
  name: string;
  inputs: fc.Arbitrary<T>;
  run(input: T): unknown;
  /** The error classes `run` may throw; anything else is a finding. */
  allowed: readonly (abstract new (
    ...args: never[]
  ) => SpiffeError)[];
}

/** Longest a single input may take before it counts as a hang. */
export const HANG_MS = 2_000;
/** Heap growth over a run that counts as unbounded memory. */
export const HEAP_LIMIT_BYTES = 512 * 1024 * 1024;

const DER_SEEDS = [
  corpus.EC_ROOT,
  corpus.RSA_ROOT,
  corpus.EC_LEAF,
  corpus.RSA_LEAF,
  corpus.CHAIN,
  corpus.EC_LEAF_KEY,
];

/** Nested SEQUENCEs around `inner`, with 4-byte long-form lengths: deep nesting at O(n) cost. */
function nest(inner: Uint8Array, depth: number): Buffer {
  const header = 6;
  const out = Buffer.alloc(depth * header + inner.length);
  for (let level = 0; level < depth; level += 1) {
    const at = level * header;
    out[at] = 0x30;
    out[at + 1] = 0x84;
    out.writeUInt32BE(out.length - at - header, at + 2);
  }
  out.set(inner, depth * header);
  return out;
}

type Mutation = (input: Buffer) => Buffer;

/** One mutation of a real input: the shapes broken encoders and attackers produce. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map(
    (n): Mutation =>
      (input) =>
        input.subarray(0, n % (input.length + 1)),
  ),
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }).map(
    (flips): Mutation =>
      (input) => {
        const out = Buffer.from(input);
        if (out.length === 0) return out;
        for (const [at, bit] of flips)
          out[at % out.length] = (out[at % out.length] ?? 0) ^ (1 << bit);
        return out;
      },
  ),
  // A length that claims far more bytes than there are (or an invalid length form).
  fc
    .tuple(
      fc.nat(),
      fc.constantFrom(0x80, 0x81, 0x84, 0x88, 0x89, 0xff),
      fc.uint8Array({ maxLength: 8 }),
    )
    .map(
      ([at, form, tail]): Mutation =>
        (input) => {
          if (input.length === 0) return input;
          const position = at % input.length;
          return Buffer.concat([
            input.subarray(0, position),
            Buffer.from([form]),
            tail,
            input.subarray(position + 1),
          ]);
        },
    ),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(
    ([at, bytes]): Mutation =>
      (input) => {
        const position = at % (input.length + 1);
        return Buffer.concat([input.subarray(0, position), bytes, input.subarray(position)]);
      },
  ),
  fc.tuple(fc.nat(), fc.nat()).map(
    ([from, count]): Mutation =>
      (input) => {
        const start = from % (input.length + 1);
        return Buffer.concat([input.subarray(0, start), input.subarray(start + (count % 64) + 1)]);
      },
  ),
  // Repeat a slice: duplicated extensions, elements, map entries.
  fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 20 })).map(
    ([from, size, times]): Mutation =>
      (input) => {
        const start = from % (input.length + 1);
        const slice = input.subarray(start, start + (size % 256));
        return Buffer.concat([
          input.subarray(0, start),
          ...Array(times).fill(slice),
          input.subarray(start),
        ]);
      },
  ),
  fc.integer({ min: 1, max: 60_000 }).map(
    (depth): Mutation =>
      (input) =>
        nest(input, depth),
  ),
  fc.constant<Mutation>((input) => Buffer.concat([input, input])),
);

/** A real input mutated one to three times, a random one, or the real one as it is. */
export function mutatedBytes(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 3 }))
        .map(([seed, steps]) => steps.reduce((bytes, step) => step(bytes), seed)),
    },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
  );
}

/** PEM text around mutated DER, or mutated PEM text. */
function pemText(der: readonly Buffer[], label: string): fc.Arbitrary<string> {
  const pem = (bytes: Buffer) =>
    `-----BEGIN ${label}-----\n${bytes.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END ${label}-----\n`;
  return fc.oneof(
    mutatedBytes([...der]).map(pem),
    mutatedBytes(der.map((bytes) => Buffer.from(pem(bytes), "latin1"))).map((bytes) =>
      bytes.toString("latin1"),
    ),
    fc.string({ maxLength: 512 }),
  );
}

const EXAMPLE = TrustDomain.parse("example.org");
const bundles = new X509BundleSet([
  X509Bundle.fromDer(EXAMPLE, Buffer.concat([corpus.EC_ROOT, corpus.RSA_ROOT])),
]);
const noSkip = () => {};

/** A decoded message, or undefined when protobuf refuses the bytes (grpc-js then ends the call). */
function decode(method: "FetchX509SVID" | "FetchX509Bundles", bytes: Buffer): unknown {
  try {
    return workloadApiMethod(method).responseDeserialize(bytes);
  } catch {
    return undefined;
  }
}

const idSeeds = [
  "spiffe://example.org/workload",
  "spiffe://example.org",
  "spiffe://a-b_c.d/e/f.g/h-i_j",
  "SPIFFE://Example.org/x",
  "spiffe://example.org/./a/../b//c/",
  "spiffe://user@example.org:443/p?q#f%41",
];

const spiffeIdInputs: fc.Arbitrary<string> = fc.oneof(
  mutatedBytes(idSeeds.map((id) => Buffer.from(id, "utf8"))).map((bytes) => bytes.toString("utf8")),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 300 }),
  fc.integer({ min: 0, max: 100_000 }).map((n) => `spiffe://example.org/${"a/".repeat(n)}a`),
);

/** How to run a target: fast-check's seed (and path, to replay one failure) and the count. */
export interface RunParameters {
  seed: number;
  numRuns: number;
  path?: string;
}

/** A target with its input type erased, so targets of all kinds fit one list. */
export interface Fuzzer {
  name: string;
  /** Runs the property; throws fast-check's report (with seed and path) on a finding. */
  check(parameters: RunParameters): void;
}

function fuzzer<T>(target: FuzzTarget<T>): Fuzzer {
  return {
    name: target.name,
    check: (parameters) =>
      fc.assert(property(target), { ...parameters, includeErrorInReport: true }),
  };
}

/** Every reader of outside bytes. */
export const TARGETS: readonly Fuzzer[] = [
  {
    name: "DER certificates (splitDer, parseDerCertificates, certificateDetails)",
    inputs: mutatedBytes(DER_SEEDS),
    run: (bytes: Buffer) => parseDerCertificates(bytes).map(certificateDetails),
    allowed: [DerError],
  },
  {
    name: "X509Svid.fromDer, mutated chain",
    inputs: mutatedBytes([corpus.CHAIN, corpus.EC_LEAF]),
    run: (chain: Buffer) => X509Svid.fromDer(chain, corpus.CHAIN_KEY),
    allowed: [SvidError],
  },
  {
    name: "X509Svid.fromDer, mutated key",
    inputs: mutatedBytes([corpus.EC_LEAF_KEY, corpus.CHAIN_KEY, corpus.RSA_LEAF_KEY]),
    run: (key: Buffer) => X509Svid.fromDer(corpus.EC_LEAF, key),
    allowed: [SvidError],
  },
  {
    name: "X509Svid.fromPem",
    inputs: fc.tuple(
      pemText([corpus.CHAIN, corpus.EC_LEAF], "CERTIFICATE"),
      pemText([corpus.EC_LEAF_KEY], "PRIVATE KEY"),
    ),
    run: ([chain, key]: [string, string]) => X509Svid.fromPem(chain, key),
    allowed: [SvidError],
  },
  {
    name: "X509Bundle.fromDer and fromPem",
    inputs: fc.tuple(
      mutatedBytes([corpus.EC_ROOT, Buffer.concat([corpus.EC_ROOT, corpus.RSA_ROOT])]),
      pemText([corpus.EC_ROOT], "CERTIFICATE"),
    ),
    run: ([der, pem]: [Buffer, string]) => {
      X509Bundle.fromDer(EXAMPLE, der);
      return X509Bundle.fromPem(EXAMPLE, pem);
    },
    allowed: [BundleError],
  },
  {
    name: "verifyX509Svid on mutated chains",
    inputs: mutatedBytes([corpus.CHAIN, corpus.EC_LEAF, corpus.RSA_LEAF]),
    run: (chain: Buffer) => {
      let certificates: ReturnType<typeof parseDerCertificates>;
      try {
        certificates = parseDerCertificates(chain);
      } catch (error) {
        if (error instanceof DerError) return undefined;
        throw error;
      }
      return verifyX509Svid(certificates, bundles, corpus.CORPUS_NOW);
    },
    allowed: [VerificationError],
  },
  {
    name: "parseSpiffeId and TrustDomain.parse",
    inputs: spiffeIdInputs,
    run: (text: string) => {
      try {
        TrustDomain.parse(text);
      } catch (error) {
        if (!(error instanceof SpiffeIdError)) throw error;
      }
      return parseSpiffeId(text);
    },
    allowed: [SpiffeIdError],
  },
  {
    name: "FetchX509SVID responses (protobuf bytes, then parseX509Context)",
    inputs: mutatedBytes([corpus.SVID_RESPONSE]),
    run: (bytes: Buffer) => {
      const message = decode("FetchX509SVID", bytes);
      return message === undefined
        ? undefined
        : parseX509Context(toRawX509SvidResponse(message), noSkip, corpus.CORPUS_NOW);
    },
    allowed: [MalformedResponseError],
  },
  {
    name: "FetchX509Bundles responses (protobuf bytes, then parseX509Bundles)",
    inputs: mutatedBytes([corpus.BUNDLES_RESPONSE]),
    run: (bytes: Buffer) => {
      const message = decode("FetchX509Bundles", bytes);
      return message === undefined
        ? undefined
        : parseX509Bundles(toRawX509BundlesResponse(message), noSkip);
    },
    allowed: [MalformedResponseError],
  },
  {
    name: "Workload API messages of any shape (toRawX509SvidResponse, parseX509Context)",
    inputs: fc.anything({ maxDepth: 4, withTypedArray: true }),
    run: (message: unknown) =>
      parseX509Context(toRawX509SvidResponse(message), noSkip, corpus.CORPUS_NOW),
    allowed: [MalformedResponseError],
  },
].map(fuzzer);

/** Why `error`, thrown by `target`, is a finding; undefined when it is one of the allowed. */
export function unexpected(
  target: { allowed: readonly (abstract new (...args: never[]) => SpiffeError)[] },
  error: unknown,
): string | undefined {
  if (target.allowed.some((type) => error instanceof type)) return undefined;
  const name =
    error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
  return `threw ${name}, not one of ${target.allowed.map((type) => type.name).join(", ")}`;
}

/** The property for one target: returns or throws an allowed error, within HANG_MS. */
export function property<T>(target: FuzzTarget<T>): fc.IPropertyWithHooks<[T]> {
  return fc.property(target.inputs, (input) => {
    const started = performance.now();
    try {
      target.run(input);
    } catch (error) {
      const finding = unexpected(target, error);
      if (finding !== undefined) throw new Error(`${target.name} ${finding}`, { cause: error });
    }
    const elapsed = performance.now() - started;
    if (elapsed > HANG_MS)
      throw new Error(`${target.name} took ${Math.round(elapsed)} ms on one input`);
    if (process.memoryUsage().heapUsed > HEAP_LIMIT_BYTES) {
      throw new Error(`${target.name}: the heap grew past ${HEAP_LIMIT_BYTES} bytes`);
    }
  });
}
