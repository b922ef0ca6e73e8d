/**
 * The logging the library does, in the shape pino and most structured loggers share, so
 * that a service can pass its own logger and the library does not depend on one.
 */
export interface Logger {
  /** Detail for debugging; the default logger drops it. */
  debug(obj: object, msg?: string): void;
  /** Normal events; the default logger drops them. */
  info(obj: object, msg?: string): void;
  /** Something went wrong and will be retried or worked around. */
  warn(obj: object, msg?: string): void;
  /** Something went wrong and will not fix itself. */
  error(obj: object, msg?: string): void;
}

/** The default: warnings and errors on stderr, nothing else, so a library stays quiet. */
export const stderrLogger: Logger = {
  debug() {},
  info() {},
  warn(obj, msg) {
    console.error(`[spiffe] warn: ${msg ?? ""} ${JSON.stringify(obj)}`);
  },
  error(obj, msg) {
    console.error(`[spiffe] error: ${msg ?? ""} ${JSON.stringify(obj)}`);
  },
};
