import { SpiffeError } from "../errors.js";

export class EndpointAddressError extends SpiffeError {}

/** The environment variable the SPIFFE Workload Endpoint spec names. */
export const ENDPOINT_SOCKET_ENV = "SPIFFE_ENDPOINT_SOCKET";

/**
 * Turns a Workload API address (`unix:///abs/path` or `tcp://<ip>:<port>`) into a gRPC
 * target. Malformed addresses throw an EndpointAddressError saying what is wrong and
 * what a valid one looks like. Without `address`, reads SPIFFE_ENDPOINT_SOCKET; with
 * neither, throws.
 */
export function resolveEndpointAddress(
  _address: string | undefined,
  _env: NodeJS.ProcessEnv = process.env,
): { address: string; grpcTarget: string } {
  throw new Error("TODO");
}
