import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Command, CommanderError } from "commander";
import {
  connectionLimitFlags,
  connectionLimitOptions,
  DEFAULT_CONNECTION_LIMITS,
} from "./connection-limits.js";

/** Parses `argv` with only the connection-limit flags, as a service would. */
function parse(argv: string[]): Record<string, number> {
  const program = new Command("test").exitOverride().configureOutput({ writeErr: () => {} });
  for (const option of connectionLimitFlags("TEST_LIMITS")) program.addOption(option);
  return program.parse(argv, { from: "user" }).opts();
}

describe("connection limit flags", () => {
  test("default to DEFAULT_CONNECTION_LIMITS", () => {
    assert.deepEqual(parse([]), {
      idleTimeout: DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
      handshakeTimeout: DEFAULT_CONNECTION_LIMITS.handshakeTimeoutMs,
      maxConnections: DEFAULT_CONNECTION_LIMITS.maxConnections,
    });
  });

  test("take seconds (fractions too) and a count; the variables give them when no flag does", (t) => {
    process.env.TEST_LIMITS_IDLE_TIMEOUT = "7";
    process.env.TEST_LIMITS_MAX_CONNECTIONS = "9";
    t.after(() => {
      delete process.env.TEST_LIMITS_IDLE_TIMEOUT;
      delete process.env.TEST_LIMITS_MAX_CONNECTIONS;
    });
    assert.deepEqual(parse(["--handshake-timeout", "2.5", "--max-connections", "3"]), {
      idleTimeout: 7000,
      handshakeTimeout: 2500,
      maxConnections: 3,
    });
  });

  for (const argv of [
    ["--idle-timeout", "0"],
    ["--idle-timeout", "-1"],
    ["--handshake-timeout", "ten"],
    ["--max-connections", "0"],
    ["--max-connections", "1.5"],
  ]) {
    test(`refuse ${argv.join(" ")}`, () => {
      assert.throws(() => parse(argv), CommanderError);
    });
  }
});

describe("connectionLimitOptions", () => {
  test("bounds the handshake, the request headers and idle keep-alive", () => {
    const options = connectionLimitOptions({
      idleTimeoutMs: 5000,
      handshakeTimeoutMs: 10_000,
      maxConnections: 1,
    });
    assert.equal(options.keepAliveTimeout, 5000);
    assert.equal(options.handshakeTimeout, 10_000);
    assert.equal(options.headersTimeout, 10_000);
    assert.equal(options.requestTimeout, 10_000);
  });
});
