/**
 * Every error the library throws is a SpiffeError, so callers can tell ours from
 * Node's with one `instanceof`, and each subclass carries a machine-readable `code`
 * naming the rule or condition that failed.
 */
export class SpiffeError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
