import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  ENDPOINT_SOCKET_ENV,
  parseWorkloadId,
  type SpiffeId,
  WorkloadApiAddress,
} from "spiffe-node";

/** The Workload API address when neither --socket nor SPIFFE_ENDPOINT_SOCKET gives one. */
export const DEFAULT_SOCKET = "unix:///tmp/agent.sock";
/** The --log-level choices (pino's levels). */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Exit code for a command line that cannot be used (as most Unix tools do). */
export const USAGE_EXIT_CODE = 2;

/** A --port style value: 0 to 65535, where 0 asks the system for any free port. */
export function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError("expected a port number from 0 to 65535 (0 = any free port).");
  }
  return Number(value);
}

/** The Workload API address, checked by the library (which says what a valid one looks like). */
export function parseSocket(value: string): WorkloadApiAddress {
  return WorkloadApiAddress.parse(value);
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

/** `--host <host>`, by default every interface. */
export function hostOption(): Option {
  return new Option("--host <host>", "address to listen on").default("0.0.0.0");
}

/** `--socket <address>`, by default SPIFFE_ENDPOINT_SOCKET, else DEFAULT_SOCKET. */
export function socketOption(env: NodeJS.ProcessEnv): Option {
  return new Option(
    "--socket <address>",
    "Workload API address (unix:///path or tcp://ip:port)",
  ).default(
    env[ENDPOINT_SOCKET_ENV] || DEFAULT_SOCKET,
    `$${ENDPOINT_SOCKET_ENV}, else ${DEFAULT_SOCKET}`,
  );
}

/** How the webapp authenticates to the quotes service: the tutorial's mTLS, or a JWT-SVID. */
export type AuthMode = "mtls" | "jwt";

/** --auth mtls|jwt, default SPIRE_DEMO_AUTH or mtls. */
export function authOption(env: NodeJS.ProcessEnv): Option {
  const fromEnv = env.SPIRE_DEMO_AUTH === "jwt" ? "jwt" : "mtls";
  return new Option(
    "--auth <mode>",
    "how the webapp authenticates to the quotes service: mtls (X.509-SVIDs both ways) or jwt (TLS with the server's X.509-SVID, a JWT-SVID bearer token from the client) (env SPIRE_DEMO_AUTH)",
  )
    .choices(["mtls", "jwt"])
    .default(fromEnv);
}

/** `--log-level <level>`, one of LOG_LEVELS, by default info. */
export function logLevelOption(): Option {
  return new Option("--log-level <level>", "log level").choices(LOG_LEVELS).default("info");
}

/**
 * Checks what the options above cannot check one by one: a non-empty host, and the socket
 * address, whose error names where it came from (--socket or SPIFFE_ENDPOINT_SOCKET).
 * Returns the socket address; on bad input exits through program.error (a CommanderError
 * with USAGE_EXIT_CODE, as the program uses exitOverride).
 */
export function checkListenAndSocket(
  program: Command,
  host: string,
  socket: string,
): WorkloadApiAddress {
  if (host.trim() === "") {
    program.error("error: option '--host <host>' must not be empty", { exitCode: USAGE_EXIT_CODE });
  }
  try {
    return parseSocket(socket);
  } catch (error) {
    const from =
      program.getOptionValueSource("socket") === "cli" ? "--socket" : ENDPOINT_SOCKET_ENV;
    return program.error(`error: ${from} is invalid: ${(error as Error).message}`, {
      exitCode: USAGE_EXIT_CODE,
    });
  }
}

/** The options every service takes, checked. */
export interface ServiceOptions {
  /** Where the service listens. */
  port: number;
  /** The address it listens on. */
  host: string;
  /** The Workload API address, parsed once here. */
  socket: WorkloadApiAddress;
  /** pino's level. */
  logLevel: string;
  /** mtls (the tutorial) or jwt (a JWT-SVID bearer token over server-authenticated TLS). */
  auth: AuthMode;
}

/** What serviceCommand needs to know about a service. */
export interface ServiceCommandSpec {
  /** The program name, as in --help. */
  name: string;
  /** One paragraph for --help. */
  description: string;
  /** What its --port is for, and its default. */
  port: { description: string; default: number };
}

/**
 * A command with the options every service takes (--port, --host, --socket, --auth); the
 * service adds its own, then parses with parseServiceCommand.
 */
export function serviceCommand(spec: ServiceCommandSpec, env: NodeJS.ProcessEnv): Command {
  return new Command(spec.name)
    .description(spec.description)
    .addOption(portOption(spec.port.description, spec.port.default))
    .addOption(hostOption())
    .addOption(socketOption(env))
    .addOption(authOption(env));
}

/**
 * Adds --log-level and --help to a serviceCommand, parses `argv` (without node and the
 * script) and checks what single options cannot: the common options as ServiceOptions,
 * plus the service's own option values as `Own`. Throws a CommanderError on bad input or
 * after printing --help; parseCommandLineOrExit turns that into the exit code.
 */
export function parseServiceCommand<Own extends object>(
  program: Command,
  argv: readonly string[],
): ServiceOptions & Own {
  program
    .addOption(logLevelOption())
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false)
    .exitOverride()
    .parse([...argv], { from: "user" });
  const opts = program.opts<Omit<ServiceOptions, "socket"> & { socket: string } & Own>();
  return { ...opts, socket: checkListenAndSocket(program, opts.host, opts.socket) };
}

/**
 * A service's parseOptions: its serviceCommand, with its own options added by
 * `addOwn`, parsed by parseServiceCommand. The returned function takes `argv` (without
 * node and the script) and the environment (SPIFFE_ENDPOINT_SOCKET is read from it).
 */
export function serviceOptionsParser<Own extends object>(
  spec: ServiceCommandSpec,
  addOwn: (program: Command) => Command,
): (argv: readonly string[], env?: NodeJS.ProcessEnv) => ServiceOptions & Own {
  return (argv, env = process.env) =>
    parseServiceCommand<Own>(addOwn(serviceCommand(spec, env)), argv);
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
