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

/** One JWTSVID message: the compact token and the ID the agent says it is for. */
export interface RawJwtSvid {
  spiffe_id: string;
  svid: string;
  hint: string;
}

export interface RawJwtSvidResponse {
  svids: RawJwtSvid[];
}

/** Trust domain ID -> JWKS document. */
export interface RawJwtBundlesResponse {
  bundles: Record<string, Buffer>;
}

export interface RawValidateJwtSvidResponse {
  spiffe_id: string;
  /** google.protobuf.Struct, turned back into plain JSON. */
  claims: Record<string, unknown>;
}

/** The streaming RPCs of the Workload API (the ones a watch reopens). */
export type WorkloadApiStreamMethod = "FetchX509SVID" | "FetchX509Bundles" | "FetchJWTBundles";

/** Every RPC of the service. */
export type WorkloadApiMethod = WorkloadApiStreamMethod | "FetchJWTSVID" | "ValidateJWTSVID";

let service: ServiceDefinition | undefined;

/** The SpiffeWorkloadAPI service definition, loaded once. */
export function workloadApiService(): ServiceDefinition {
  if (service === undefined) {
    const definitions = loadSync(WORKLOAD_PROTO_PATH, {
      keepCase: true,
      defaults: true,
      oneofs: true,
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

/** Narrows a decoded FetchJWTSVID response; missing fields become empty. */
export function toRawJwtSvidResponse(message: unknown): RawJwtSvidResponse {
  const svids = field(message, "svids");
  return {
    svids: (Array.isArray(svids) ? svids : []).map((svid: unknown) => ({
      spiffe_id: text(field(svid, "spiffe_id")),
      svid: text(field(svid, "svid")),
      hint: text(field(svid, "hint")),
    })),
  };
}

/** Narrows a decoded FetchJWTBundles response; missing fields become empty. */
export function toRawJwtBundlesResponse(message: unknown): RawJwtBundlesResponse {
  return { bundles: bytesMap(field(message, "bundles")) };
}

/** google.protobuf.Value as proto-loader decodes it (with `oneofs`: `kind` names the field). */
function fromProtoValue(value: unknown): unknown {
  switch (field(value, "kind")) {
    case "nullValue":
      return null;
    case "numberValue":
      return field(value, "numberValue");
    case "stringValue":
      return field(value, "stringValue");
    case "boolValue":
      return field(value, "boolValue");
    case "structValue":
      return fromProtoStruct(field(value, "structValue"));
    case "listValue": {
      const values = field(field(value, "listValue"), "values");
      return (Array.isArray(values) ? values : []).map(fromProtoValue);
    }
    default:
      return null;
  }
}

/** google.protobuf.Struct into the JSON object it stands for. */
export function fromProtoStruct(struct: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = field(struct, "fields");
  if (typeof fields === "object" && fields !== null) {
    for (const [key, value] of Object.entries(fields)) out[key] = fromProtoValue(value);
  }
  return out;
}

/** A JSON value as google.protobuf.Value (for the fake agent's ValidateJWTSVID). */
function toProtoValue(value: unknown): object {
  if (value === null || value === undefined) return { nullValue: "NULL_VALUE" };
  if (typeof value === "number") return { numberValue: value };
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toProtoValue) } };
  return { structValue: toProtoStruct(value as Record<string, unknown>) };
}

/** A JSON object as google.protobuf.Struct. */
export function toProtoStruct(object: Record<string, unknown>): object {
  const fields: Record<string, object> = {};
  for (const [key, value] of Object.entries(object)) fields[key] = toProtoValue(value);
  return { fields };
}

/** Narrows a decoded ValidateJWTSVID response. */
export function toRawValidateJwtSvidResponse(message: unknown): RawValidateJwtSvidResponse {
  return {
    spiffe_id: text(field(message, "spiffe_id")),
    claims: fromProtoStruct(field(message, "claims")),
  };
}
