import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CommanderError, InvalidArgumentError } from "commander";
import { WorkloadApiAddress } from "spiffe-node";
import {
  DEFAULT_SOCKET,
  exitCodeFor,
  parsePort,
  serviceOptionsParser,
  USAGE_EXIT_CODE,
  workloadIdOption,
} from "./command-line.js";

/** The services' common options with one of their own, parsed as the services do. */
function parse(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const parser = serviceOptionsParser<{ extra?: string }>(
    { name: "test-service", description: "a test", port: { description: "port", default: 8090 } },
    (program) => program.option("--extra <text>").configureOutput(SILENT),
  );
  const { socket, ...rest } = parser(argv, env);
  assert.ok(socket instanceof WorkloadApiAddress, "the address comes parsed");
  return { ...rest, socket: String(socket) };
}

const SILENT = { writeErr: () => {}, writeOut: () => {} };

function usageError(run: () => unknown, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof CommanderError);
    assert.equal(exitCodeFor(error), USAGE_EXIT_CODE);
    assert.match(error.message, message);
    return true;
  });
}

describe("command-line options shared by the services", () => {
  test("defaults: the service's port, all addresses, the agent socket, info", () => {
    assert.deepEqual(parse([]), {
      port: 8090,
      host: "0.0.0.0",
      socket: DEFAULT_SOCKET,
      logLevel: "info",
      auth: "mtls",
    });
  });

  test("--auth: mtls by default, jwt from SPIRE_DEMO_AUTH or the flag, nothing else", () => {
    assert.equal(parse([], { SPIRE_DEMO_AUTH: "jwt" }).auth, "jwt");
    assert.equal(parse(["--auth", "jwt"]).auth, "jwt");
    assert.equal(parse(["--auth", "mtls"], { SPIRE_DEMO_AUTH: "jwt" }).auth, "mtls");
    usageError(() => parse(["--auth", "basic"]), /--auth/);
  });

  test("the service's own options come with the common ones; extra arguments are refused", () => {
    assert.equal(parse(["--extra", "x"]).extra, "x");
    usageError(() => parse(["stray"]), /too many arguments/);
  });

  test("--socket defaults to SPIFFE_ENDPOINT_SOCKET when it is set", () => {
    const env = { SPIFFE_ENDPOINT_SOCKET: "unix:///run/spire/agent.sock" };
    assert.equal(parse([], env).socket, "unix:///run/spire/agent.sock");
    assert.equal(parse(["--socket", "tcp://127.0.0.1:8081"], env).socket, "tcp://127.0.0.1:8081");
  });

  test("a bad socket address names where it came from", () => {
    usageError(() => parse(["--socket", "unix://host/agent.sock"]), /--socket is invalid/);
    usageError(
      () => parse([], { SPIFFE_ENDPOINT_SOCKET: "http://agent" }),
      /SPIFFE_ENDPOINT_SOCKET is invalid/,
    );
  });

  test("bad ports, an empty host and unknown log levels are usage errors", () => {
    usageError(() => parse(["--port", "65536"]), /port number from 0 to 65535/);
    usageError(() => parse(["--host", " "]), /'--host <host>' must not be empty/);
    usageError(() => parse(["--log-level", "loud"]), /Allowed choices are fatal, error/);
  });

  test("parsePort accepts 0 to 65535 and nothing else", () => {
    assert.equal(parsePort("0"), 0);
    assert.equal(parsePort("65535"), 65535);
    for (const bad of ["", "-1", "8080x", "1e3", "65536"]) {
      assert.throws(() => parsePort(bad), InvalidArgumentError, bad);
    }
  });

  test("workloadIdOption: a workload ID, the default, or an error naming the default", () => {
    const option = workloadIdOption("--peer-id <id>", "peer", "spiffe://broker.org/webapp");
    assert.equal(String(option.defaultValue), "spiffe://broker.org/webapp");
    const parseId = (value: string): unknown => option.parseArg?.(value, undefined);
    assert.equal(String(parseId("spiffe://stocksmarket.org/x")), "spiffe://stocksmarket.org/x");
    assert.throws(() => parseId("spiffe://broker.org"), {
      name: "InvalidArgumentError",
      message: /expected a workload ID such as spiffe:\/\/broker\.org\/webapp/,
    });
  });

  test("exitCodeFor: 0 after --help, USAGE_EXIT_CODE otherwise", () => {
    assert.equal(exitCodeFor(new CommanderError(0, "commander.helpDisplayed", "")), 0);
    assert.equal(exitCodeFor(new CommanderError(1, "commander.unknownOption", "")), 2);
  });
});
