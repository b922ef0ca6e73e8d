/**
 * Every error the library throws is a SpiffeError, so callers can tell ours from
 * Node's with one `instanceof`, and each subclass carries a machine-readable `code`
 * naming the rule or condition that failed.
 */
export class SpiffeError extends Error {
  /** What failed, as a stable machine-readable name (each subclass lists its codes). */
  readonly code: string;

  /** `code` names the rule or condition; `message` says it for people. */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
