import type { Logger } from "pino";
import { X509Source } from "spiffe-node";
import { parseCommandLineOrExit, type ServiceOptions } from "./command-line.js";
import { logIdentityChanges } from "./identity-log.js";
import { createLogger } from "./logger.js";
import { handleShutdown } from "./shutdown.js";
import { DEMO_WORKLOAD_API_BACKOFF } from "./workload-api.js";

/** What a service's `serve` gets from runService. */
export interface ServiceContext<O extends ServiceOptions> {
  /** The checked command line. */
  readonly options: O;
  /** The service's logger. */
  readonly log: Logger;
  /** The workload's SVID and bundles, from the Workload API at `options.socket`. */
  readonly source: X509Source;
  /** True once shutdown began (a signal during start-up): a later start-up step should stop. */
  readonly stopping: boolean;
  /** Adds something to close at shutdown, after the source; closed in the order added. */
  onShutdown(close: () => unknown): void;
}

/** A service, as runService starts it. */
export interface ServiceSpec<O extends ServiceOptions> {
  /** Its name, in its logs. */
  name: string;
  /** Parses its command line (see parseServiceCommand). */
  parseOptions: (argv: readonly string[]) => O;
  /** Starts serving; a rejection is logged as a failed start-up and stops the process. */
  serve: (context: ServiceContext<O>) => Promise<void>;
}

/** Options as log fields: parsed values (IDs, URLs, the address) as the text they came from. */
function printable(options: ServiceOptions): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(options).map(([key, value]) => [
      key,
      typeof value === "object" && value !== null ? String(value) : value,
    ]),
  );
}

/**
 * The start both services share: parses the command line (exiting on bad input), logs
 * the options, opens the X509Source with the demo's backoff, logs identity changes, and on
 * SIGTERM, SIGINT or a failed start-up closes the identity log, the source and whatever
 * `serve` registered, then exits.
 */
export async function runService<O extends ServiceOptions>(spec: ServiceSpec<O>): Promise<void> {
  const options = parseCommandLineOrExit(spec.parseOptions);
  const log = createLogger(spec.name, options.logLevel);
  log.info(printable(options), `starting ${spec.name}`);
  const source = new X509Source({
    address: options.socket,
    backoff: DEMO_WORKLOAD_API_BACKOFF,
    logger: log.child({ component: "workload-api" }),
  });
  const stopIdentityLog = logIdentityChanges(source, log);
  const closers: (() => unknown)[] = [];
  const shutdown = handleShutdown(log, async () => {
    stopIdentityLog();
    source.close();
    for (const close of closers) await close();
  });
  const context: ServiceContext<O> = {
    options,
    log,
    source,
    get stopping() {
      return shutdown.stopping;
    },
    onShutdown: (close) => {
      closers.push(close);
    },
  };
  try {
    await spec.serve(context);
  } catch (error) {
    shutdown.startupFailed(error);
  }
}
