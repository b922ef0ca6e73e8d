import { accessSync, constants, statSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import type { WorkloadApiAddress } from "./address.js";
import { WorkloadApiError } from "./errors.js";

/**
 * Why a workload has no SVID from its agent, as far as the client can tell:
 * - "no-socket": nothing at the unix socket path (the agent has not started);
 * - "not-a-socket": something other than a socket is at that path;
 * - "socket-permission-denied": this process may not open the socket (or its folder);
 * - "connection-refused": the socket is there, but no agent answers on it (it stopped);
 * - "unreachable": nothing answers at a tcp:// address;
 * - "no-entry": the agent answered PERMISSION_DENIED, which SPIRE does until a
 *   registration entry matches the caller;
 * - "no-answer-yet": no error so far, and no SVID either;
 * - "other": any other Workload API error (see `error`).
 */
export type AgentProblemKind =
  | "no-socket"
  | "not-a-socket"
  | "socket-permission-denied"
  | "connection-refused"
  | "unreachable"
  | "no-entry"
  | "no-answer-yet"
  | "other";

/** What diagnoseAgentProblem found. */
export interface AgentProblem {
  /** Which problem it is. */
  kind: AgentProblemKind;
  /** The Workload API address in use. */
  address: WorkloadApiAddress;
  /** The error the classification came from (its message has the full gRPC detail). */
  error: Error | undefined;
}

/**
 * Each problem in one sentence (lower case, no full stop, so it can go inside another
 * sentence). The client's errors, the source's time-outs and the services' advice all
 * say it in these words, so a reader meets one wording per problem.
 */
export function describeAgentProblem(kind: AgentProblemKind, address: WorkloadApiAddress): string {
  const where = address.socketPath ?? address.address;
  switch (kind) {
    case "no-socket":
      return `there is no SPIRE Agent socket at ${where}: the agent is not running`;
    case "not-a-socket":
      return `${where} is not a socket, so no SPIRE Agent can answer there`;
    case "socket-permission-denied":
      return `this process may not open the SPIRE Agent socket at ${where} (permission denied)`;
    case "connection-refused":
      return `the socket ${where} is there, but no SPIRE Agent answers on it (connection refused): the agent has stopped`;
    case "unreachable":
      return `no SPIRE Agent answers at ${address}`;
    case "no-entry":
      return `the SPIRE Agent at ${address} answered, but no registration entry matches this workload yet`;
    case "no-answer-yet":
      return `no answer from the SPIRE Agent at ${address} yet`;
    case "other":
      return `the SPIRE Agent at ${address} answered with an error`;
  }
}

/** What is at a socket path, seen from this process. */
function probeSocket(
  path: string,
): "no-socket" | "not-a-socket" | "socket-permission-denied" | "connection-refused" {
  let isSocket: boolean;
  try {
    isSocket = statSync(path).isSocket();
  } catch (error) {
    // EACCES here: a folder on the way is closed to this user.
    return (error as NodeJS.ErrnoException).code === "EACCES"
      ? "socket-permission-denied"
      : "no-socket";
  }
  if (!isSocket) return "not-a-socket";
  try {
    // connect() on a unix socket needs write permission on it.
    accessSync(path, constants.W_OK);
  } catch {
    return "socket-permission-denied";
  }
  return "connection-refused";
}

/**
 * Classifies the last Workload API error (X509Source#lastError) of a workload that has no
 * SVID. The gRPC status code tells "the agent said no" (PERMISSION_DENIED) from "no agent"
 * (UNAVAILABLE); for the latter, grpc-js keeps the socket error only as text, so the
 * socket itself is examined instead (a stat and an access check, no connection).
 */
export function diagnoseAgentProblem(
  error: Error | undefined,
  address: WorkloadApiAddress,
): AgentProblem {
  const { socketPath } = address;
  const problem = (kind: AgentProblemKind): AgentProblem => ({ kind, address, error });
  if (error === undefined) return problem("no-answer-yet");
  if (!(error instanceof WorkloadApiError)) return problem("other");
  switch (error.grpcCode) {
    case status.PERMISSION_DENIED:
      return problem("no-entry");
    case status.UNAVAILABLE:
      return problem(socketPath === undefined ? "unreachable" : probeSocket(socketPath));
    default:
      return problem("other");
  }
}
