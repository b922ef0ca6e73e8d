import { type Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { parseWorkloadId, resolveEndpointAddress, type SpiffeId } from "spiffe-node";

/** The Workload API address when neither --socket nor SPIFFE_ENDPOINT_SOCKET gives one. */
export const DEFAULT_SOCKET = "unix:///tmp/agent.sock";
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Exit code for a command line that cannot be used (as most Unix tools do). */
export const USAGE_EXIT_CODE = 2;

export function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError("expected a port number from 0 to 65535 (0 = any free port).");
  }
  return Number(value);
}

/** The Workload API address, checked by the library (which says what a valid one looks like). */
export function parseSocket(value: string): string {
  return resolveEndpointAddress(value, {}).address;
}

/** A parser for a workload SPIFFE ID option; `example` goes in its error message. */
function workloadIdParser(example: string): (value: string) => SpiffeId {
  return (value) => {
    try {
      return parseWorkloadId(value);
    } catch (error) {
      throw new InvalidArgumentError(
        `${(error as Error).message} (expected a workload ID such as ${example}).`,
      );
    }
  };
}

/**
 * An option taking a workload SPIFFE ID (e.g. `--quotes-id <spiffe-id>`), checked, with
 * `defaultId` as both the default and the example a bad value's error names.
 */
export function workloadIdOption(flags: string, description: string, defaultId: string): Option {
  const parseId = workloadIdParser(defaultId);
  return new Option(flags, description).argParser(parseId).default(parseId(defaultId), defaultId);
}

/** `--port <port>`, checked, with the service's default. */
export function portOption(description: string, defaultPort: number): Option {
  return new Option("--port <port>", description).argParser(parsePort).default(defaultPort);
}

export function hostOption(): Option {
  return new Option("--host <host>", "address to listen on").default("0.0.0.0");
}

/** `--socket <address>`, by default SPIFFE_ENDPOINT_SOCKET, else DEFAULT_SOCKET. */
export function socketOption(env: NodeJS.ProcessEnv): Option {
  return new Option(
    "--socket <address>",
    "Workload API address (unix:///path or tcp://ip:port)",
  ).default(
    env.SPIFFE_ENDPOINT_SOCKET || DEFAULT_SOCKET,
    "$SPIFFE_ENDPOINT_SOCKET, else unix:///tmp/agent.sock",
  );
}

export function logLevelOption(): Option {
  return new Option("--log-level <level>", "log level").choices(LOG_LEVELS).default("info");
}

/**
 * Checks what the options above cannot check one by one: a non-empty host, and the socket
 * address, whose error names where it came from (--socket or SPIFFE_ENDPOINT_SOCKET).
 * Returns the socket address; on bad input exits through program.error (a CommanderError
 * with USAGE_EXIT_CODE, as the program uses exitOverride).
 */
export function checkListenAndSocket(program: Command, host: string, socket: string): string {
  if (host.trim() === "") {
    program.error("error: option '--host <host>' must not be empty", { exitCode: USAGE_EXIT_CODE });
  }
  try {
    return parseSocket(socket);
  } catch (error) {
    const from =
      program.getOptionValueSource("socket") === "cli" ? "--socket" : "SPIFFE_ENDPOINT_SOCKET";
    return program.error(`error: ${from} is invalid: ${(error as Error).message}`, {
      exitCode: USAGE_EXIT_CODE,
    });
  }
}

/** Exit code for a CommanderError: 0 after --help, USAGE_EXIT_CODE for bad input. */
export function exitCodeFor(error: CommanderError): number {
  return error.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
}

/**
 * Runs `parse` on the process's arguments; when it throws a CommanderError (bad input, or
 * --help), exits with exitCodeFor it: Commander has already printed the message or help.
 */
export function parseCommandLineOrExit<T>(parse: (argv: readonly string[]) => T): T {
  try {
    return parse(process.argv.slice(2));
  } catch (error) {
    if (error instanceof CommanderError) process.exit(exitCodeFor(error));
    throw error;
  }
}
