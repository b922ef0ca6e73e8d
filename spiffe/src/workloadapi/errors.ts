import { SpiffeError } from "../errors/spiffe-error.js";

/** A gRPC failure from the Workload API, with the status code name (e.g. "PERMISSION_DENIED"). */
export class WorkloadApiError extends SpiffeError {
  /** gRPC numeric status code. */
  readonly grpcCode: number;

  /** `code` is the status name, `grpcCode` its number, `message` what it means here. */
  constructor(code: string, grpcCode: number, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.grpcCode = grpcCode;
  }
}
