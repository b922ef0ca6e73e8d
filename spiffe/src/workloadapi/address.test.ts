import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EndpointAddressError, resolveEndpointAddress, WorkloadApiAddress } from "./address.js";

describe("resolveEndpointAddress", () => {
  const valid: [string, string][] = [
    ["unix:///tmp/agent.sock", "unix:///tmp/agent.sock"],
    ["unix:/tmp/agent.sock", "unix:///tmp/agent.sock"],
    ["UNIX:///run/spire/sockets/agent.sock", "unix:///run/spire/sockets/agent.sock"],
    ["unix:///tmp/with%20space.sock", "unix:///tmp/with space.sock"],
    ["tcp://127.0.0.1:8081", "ipv4:127.0.0.1:8081"],
    ["tcp://10.0.0.1:1", "ipv4:10.0.0.1:1"],
    ["tcp://10.0.0.1:65535", "ipv4:10.0.0.1:65535"],
    ["tcp://[::1]:8081", "ipv6:[::1]:8081"],
    ["tcp://[2001:db8::7]:443", "ipv6:[2001:db8::7]:443"],
  ];
  for (const [address, target] of valid) {
    test(`accepts ${address}`, () => {
      const parsed = resolveEndpointAddress(address, {});
      assert.ok(parsed instanceof WorkloadApiAddress);
      assert.equal(parsed.address, address);
      assert.equal(parsed.grpcTarget, target);
      assert.equal(parsed.socketPath, target.startsWith("unix://") ? target.slice(7) : undefined);
      assert.equal(String(parsed), address);
      assert.equal(JSON.stringify({ parsed }), JSON.stringify({ parsed: address }));
      // Already parsed: handed back as it is, not parsed again.
      assert.equal(resolveEndpointAddress(parsed, {}), parsed);
    });
  }

  // [address, error code, a phrase the message must contain]
  const invalid: [string, string, string][] = [
    ["", "empty", "empty"],
    [" unix:///tmp/agent.sock", "not-a-uri", "spaces"],
    ["/tmp/agent.sock", "not-a-uri", "unix:///tmp/agent.sock"],
    ["agent.sock", "not-a-uri", "no scheme"],
    ["http://127.0.0.1:8081", "bad-scheme", "unix or tcp"],
    ["https://127.0.0.1:8081", "bad-scheme", "unix or tcp"],
    ["unix://tmp/agent.sock", "unix-authority", "authority"],
    ["unix://localhost/tmp/agent.sock", "unix-authority", "three slashes"],
    ["unix://user@/tmp/agent.sock", "unix-authority", "authority"],
    ["unix:agent.sock", "unix-relative-path", "absolute"],
    ["unix:", "unix-relative-path", "absolute"],
    ["unix:///", "unix-path", "directory"],
    ["unix:///tmp/agent.sock?x=1", "unix-extra", "query"],
    ["unix:///tmp/agent.sock#frag", "unix-extra", "fragment"],
    ["tcp:127.0.0.1:8081", "not-a-uri", "tcp://<ip>:<port>"],
    ["tcp://127.0.0.1:8081/", "tcp-path", "path"],
    ["tcp://127.0.0.1:8081/agent", "tcp-path", "path"],
    ["tcp://127.0.0.1:8081?x=1", "tcp-extra", "query"],
    ["tcp://user@127.0.0.1:8081", "tcp-extra", "user info"],
    ["tcp://localhost:8081", "tcp-not-ip", "IP address"],
    ["tcp://spire-agent:8081", "tcp-not-ip", "IP address"],
    ["tcp://0x7f.1:8081", "tcp-not-ip", "IP address"],
    ["tcp://[::1:8081", "tcp-not-ip", "IP address"],
    ["tcp://:8081", "tcp-not-ip", "host is missing"],
    ["tcp://127.0.0.1", "tcp-port", "port is missing"],
    ["tcp://127.0.0.1:", "tcp-port", "port is missing"],
    ["tcp://[::1]", "tcp-port", "port is missing"],
    ["tcp://127.0.0.1:0", "tcp-port", "1-65535"],
    ["tcp://127.0.0.1:65536", "tcp-port", "1-65535"],
    ["tcp://127.0.0.1:http", "tcp-port", "1-65535"],
  ];
  for (const [address, code, phrase] of invalid) {
    test(`rejects ${JSON.stringify(address)} (${code})`, () => {
      assert.throws(
        () => resolveEndpointAddress(address, {}),
        (error: unknown) => {
          assert.ok(error instanceof EndpointAddressError);
          assert.equal(error.code, code);
          assert.ok(error.message.includes(phrase), error.message);
          // Every message shows what a valid address looks like.
          assert.match(error.message, /unix:\/\/\/tmp\/agent\.sock or tcp:\/\/127\.0\.0\.1:8081/);
          return true;
        },
      );
    });
  }

  test("reads SPIFFE_ENDPOINT_SOCKET when no address is given", () => {
    const env = { SPIFFE_ENDPOINT_SOCKET: "unix:///tmp/env.sock" };
    const parsed = resolveEndpointAddress(undefined, env);
    assert.equal(parsed.address, "unix:///tmp/env.sock");
    assert.equal(parsed.grpcTarget, "unix:///tmp/env.sock");
    assert.equal(parsed.socketPath, "/tmp/env.sock");
  });

  test("an explicit address wins over SPIFFE_ENDPOINT_SOCKET", () => {
    const env = { SPIFFE_ENDPOINT_SOCKET: "unix:///tmp/env.sock" };
    assert.equal(resolveEndpointAddress("tcp://127.0.0.1:9", env).grpcTarget, "ipv4:127.0.0.1:9");
  });

  test("names the variable when SPIFFE_ENDPOINT_SOCKET is malformed", () => {
    const env = { SPIFFE_ENDPOINT_SOCKET: "tcp://spire-agent:8081" };
    assert.throws(() => resolveEndpointAddress(undefined, env), {
      name: "EndpointAddressError",
      code: "tcp-not-ip",
      message: /^SPIFFE_ENDPOINT_SOCKET: invalid Workload API address "tcp:\/\/spire-agent:8081"/,
    });
  });

  test("says how to fix a missing or empty address", () => {
    assert.throws(() => resolveEndpointAddress(undefined, {}), {
      code: "missing",
      message: /set SPIFFE_ENDPOINT_SOCKET/,
    });
    assert.throws(() => resolveEndpointAddress(undefined, { SPIFFE_ENDPOINT_SOCKET: "" }), {
      code: "empty",
      message: /SPIFFE_ENDPOINT_SOCKET is set but empty/,
    });
  });
});
