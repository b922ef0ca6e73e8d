import type { Logger } from "pino";
import { ListenError } from "./listen.js";

/** How long closing may take before the process exits anyway. */
export const SHUTDOWN_GRACE_MS = 5_000;

/** The handle handleShutdown gives: whether it is stopping, and how to stop. */
export interface Shutdown {
  /** True once stop() has run (a signal, or a failed start-up). */
  readonly stopping: boolean;
  /** Logs "shutting down" with the reason, closes everything, exits with `exitCode`. */
  stop(reason: string, exitCode: number): void;
  /** Logs why start-up failed (a ListenError says it in plain words) and stops with 1. */
  startupFailed(error: unknown): void;
}

/**
 * Stops the service on SIGTERM or SIGINT (exit code 0), or when asked: runs `closeAll`
 * once, then exits when it settles, or after `graceMs` at the latest.
 */
export function handleShutdown(
  log: Logger,
  closeAll: () => Promise<unknown>,
  graceMs = SHUTDOWN_GRACE_MS,
): Shutdown {
  let stopping = false;
  const stop = (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, "shutting down");
    const exit = () => process.exit(exitCode);
    setTimeout(exit, graceMs).unref();
    closeAll().then(exit, exit);
  };
  process.once("SIGTERM", () => stop("SIGTERM", 0));
  process.once("SIGINT", () => stop("SIGINT", 0));
  return {
    get stopping() {
      return stopping;
    },
    stop,
    startupFailed(error: unknown) {
      if (stopping) return;
      if (error instanceof ListenError) {
        log.fatal({ error: error.message }, error.message);
      } else {
        log.fatal({ err: error }, "failed to start");
      }
      stop("start-up failed", 1);
    },
  };
}

/** What closeServer needs: an http, https or net server. */
export interface ClosableServer {
  readonly listening: boolean;
  close(callback: () => void): unknown;
  closeAllConnections?(): void;
}

/** Stops listening and drops every connection, kept-alive ones included; at once if not listening. */
export function closeServer(server: ClosableServer | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}
