import { fileURLToPath } from "node:url";
import { loadSync, type MethodDefinition, type ServiceDefinition } from "@grpc/proto-loader";

/**
 * spiffe/proto/workload.proto. This module sits two levels below spiffe/ both as source
 * (src/workloadapi/proto.ts, run by tsx) and compiled (dist/workloadapi/proto.js).
 */
export const WORKLOAD_PROTO_PATH = fileURLToPath(
  new URL("../../proto/workload.proto", import.meta.url),
);

/** The gRPC header every Workload API call must carry, and its value. */
export const SECURITY_HEADER = "workload.spiffe.io";
export const SECURITY_HEADER_VALUE = "true";

/** One X509SVID message as proto-loader decodes it (defaults filled in). */
export interface RawX509Svid {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint: string;
}

/** CRLs (field `crl`) are left out: SPIRE does not send them and this library ignores them. */
export interface RawX509SvidResponse {
  svids: RawX509Svid[];
  federated_bundles: Record<string, Buffer>;
}

export interface RawX509BundlesResponse {
  bundles: Record<string, Buffer>;
}

/** The Workload API streams this library calls. */
export type WorkloadApiMethod = "FetchX509SVID" | "FetchX509Bundles";

let service: ServiceDefinition | undefined;

/** The SpiffeWorkloadAPI service definition, loaded once. */
export function workloadApiService(): ServiceDefinition {
  if (service === undefined) {
    const definitions = loadSync(WORKLOAD_PROTO_PATH, {
      keepCase: true,
      defaults: true,
      longs: String,
    });
    const loaded = definitions.SpiffeWorkloadAPI;
    if (loaded === undefined || !("FetchX509SVID" in loaded)) {
      throw new Error(`${WORKLOAD_PROTO_PATH} does not declare service SpiffeWorkloadAPI`);
    }
    service = loaded as ServiceDefinition;
  }
  return service;
}

export function workloadApiMethod(name: WorkloadApiMethod): MethodDefinition<object, object> {
  const method = workloadApiService()[name];
  if (method === undefined) throw new Error(`${WORKLOAD_PROTO_PATH} has no rpc ${name}`);
  return method;
}

function bytes(value: unknown): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.alloc(0);
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function bytesMap(value: unknown): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  if (typeof value === "object" && value !== null) {
    for (const [key, entry] of Object.entries(value)) out[key] = bytes(entry);
  }
  return out;
}

function field(message: unknown, name: string): unknown {
  return typeof message === "object" && message !== null
    ? (message as Record<string, unknown>)[name]
    : undefined;
}

/** Narrows a decoded FetchX509SVID response; missing fields become empty. */
export function toRawX509SvidResponse(message: unknown): RawX509SvidResponse {
  const svids = field(message, "svids");
  return {
    svids: (Array.isArray(svids) ? svids : []).map((svid: unknown) => ({
      spiffe_id: text(field(svid, "spiffe_id")),
      x509_svid: bytes(field(svid, "x509_svid")),
      x509_svid_key: bytes(field(svid, "x509_svid_key")),
      bundle: bytes(field(svid, "bundle")),
      hint: text(field(svid, "hint")),
    })),
    federated_bundles: bytesMap(field(message, "federated_bundles")),
  };
}

/** Narrows a decoded FetchX509Bundles response; missing fields become empty. */
export function toRawX509BundlesResponse(message: unknown): RawX509BundlesResponse {
  return { bundles: bytesMap(field(message, "bundles")) };
}
