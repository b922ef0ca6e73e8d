import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  parseSpiffeId,
  parseWorkloadId,
  SpiffeIdError,
  type SpiffeIdRule,
  TrustDomain,
} from "./spiffeid.js";

function assertRule(parse: () => unknown, rule: SpiffeIdRule): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof SpiffeIdError, `expected SpiffeIdError, got ${String(error)}`);
    assert.equal(error.code, rule, error.message);
    return true;
  });
}

describe("parseSpiffeId", () => {
  it("accepts the tutorial's workload IDs", () => {
    const id = parseSpiffeId("spiffe://broker.org/webapp");
    assert.equal(id.trustDomain.name, "broker.org");
    assert.equal(id.path, "/webapp");
    assert.equal(id.toString(), "spiffe://broker.org/webapp");
    assert.equal(parseSpiffeId("spiffe://stocksmarket.org/quotes-service").path, "/quotes-service");
  });

  it("accepts every allowed character and multi-segment paths", () => {
    const id = parseSpiffeId("spiffe://a-b_c.9/Path.x/UPPER_lower-09/...x/.hidden");
    assert.equal(id.trustDomain.name, "a-b_c.9");
    assert.equal(id.path, "/Path.x/UPPER_lower-09/...x/.hidden");
  });

  it("accepts a trust domain ID without a path", () => {
    const id = parseSpiffeId("spiffe://broker.org");
    assert.equal(id.path, "");
    assert.equal(id.toString(), "spiffe://broker.org");
  });

  it("compares by value and tells membership", () => {
    const a = parseSpiffeId("spiffe://broker.org/webapp");
    assert.ok(a.equals(parseSpiffeId("spiffe://broker.org/webapp")));
    assert.ok(!a.equals(parseSpiffeId("spiffe://broker.org/webapp2")));
    assert.ok(!a.equals(parseSpiffeId("spiffe://stocksmarket.org/webapp")));
    assert.ok(a.memberOf(TrustDomain.parse("broker.org")));
    assert.ok(!a.memberOf(TrustDomain.parse("stocksmarket.org")));
    assert.equal(JSON.stringify({ id: a }), '{"id":"spiffe://broker.org/webapp"}');
  });

  const invalid: [string, string, SpiffeIdRule][] = [
    ["empty", "", "empty"],
    ["upper-case scheme", "SPIFFE://broker.org/webapp", "wrong-scheme"],
    ["mixed-case scheme", "Spiffe://broker.org/webapp", "wrong-scheme"],
    ["another scheme", "https://broker.org/webapp", "wrong-scheme"],
    ["no scheme", "broker.org/webapp", "wrong-scheme"],
    ["scheme with one slash", "spiffe:/broker.org/webapp", "wrong-scheme"],
    ["missing trust domain", "spiffe:///webapp", "missing-trust-domain"],
    ["scheme only", "spiffe://", "missing-trust-domain"],
    ["upper-case trust domain", "spiffe://Broker.org/webapp", "bad-trust-domain-char"],
    ["trust domain with a space", "spiffe://bro ker.org/webapp", "bad-trust-domain-char"],
    ["non-ASCII trust domain", "spiffe://brökér.org/webapp", "bad-trust-domain-char"],
    ["port", "spiffe://broker.org:8443/webapp", "has-port"],
    ["user info", "spiffe://user@broker.org/webapp", "has-userinfo"],
    ["user info with a password", "spiffe://user:pw@broker.org/webapp", "has-userinfo"],
    ["query", "spiffe://broker.org/webapp?x=1", "has-query"],
    ["query without path", "spiffe://broker.org?x=1", "has-query"],
    ["fragment", "spiffe://broker.org/webapp#frag", "has-fragment"],
    ["fragment without path", "spiffe://broker.org#frag", "has-fragment"],
    ["percent-encoding in path", "spiffe://broker.org/web%20app", "percent-encoded"],
    ["percent-encoding in trust domain", "spiffe://broker%2eorg/webapp", "percent-encoded"],
    ["empty segment", "spiffe://broker.org//webapp", "empty-segment"],
    ["empty segment in the middle", "spiffe://broker.org/a//b", "empty-segment"],
    ["dot segment", "spiffe://broker.org/./webapp", "dot-segment"],
    ["dot-dot segment", "spiffe://broker.org/a/../webapp", "dot-segment"],
    ["final dot-dot segment", "spiffe://broker.org/a/..", "dot-segment"],
    ["trailing slash", "spiffe://broker.org/webapp/", "trailing-slash"],
    ["root path only", "spiffe://broker.org/", "trailing-slash"],
    ["space in path", "spiffe://broker.org/web app", "bad-path-char"],
    ["colon in path", "spiffe://broker.org/a:b", "bad-path-char"],
    ["plus in path", "spiffe://broker.org/a+b", "bad-path-char"],
    ["non-ASCII path", "spiffe://broker.org/café", "bad-path-char"],
  ];
  for (const [what, input, rule] of invalid) {
    it(`rejects ${what} (${rule})`, () => assertRule(() => parseSpiffeId(input), rule));
  }

  it("names the input and the broken rule in the message", () => {
    assert.throws(
      () => parseSpiffeId("spiffe://broker.org:8443/webapp"),
      (error: unknown) =>
        error instanceof SpiffeIdError &&
        error.input === "spiffe://broker.org:8443/webapp" &&
        error.message.includes('"spiffe://broker.org:8443/webapp"') &&
        error.message.includes("port"),
    );
  });
});

describe("parseWorkloadId", () => {
  it("accepts an ID with a path", () => {
    assert.equal(parseWorkloadId("spiffe://broker.org/webapp").path, "/webapp");
  });

  it("rejects a trust domain ID (missing path)", () => {
    assertRule(() => parseWorkloadId("spiffe://broker.org"), "missing-path");
  });

  it("still applies every other rule", () => {
    assertRule(() => parseWorkloadId("spiffe://broker.org/webapp/"), "trailing-slash");
    assertRule(() => parseWorkloadId("SPIFFE://broker.org/webapp"), "wrong-scheme");
  });
});

describe("TrustDomain.parse", () => {
  it("accepts a bare name and a trust domain ID, to the same value", () => {
    const bare = TrustDomain.parse("stocksmarket.org");
    const asId = TrustDomain.parse("spiffe://stocksmarket.org");
    assert.equal(bare.name, "stocksmarket.org");
    assert.ok(bare.equals(asId));
    assert.equal(bare.idString(), "spiffe://stocksmarket.org");
    assert.equal(`${bare}`, "stocksmarket.org");
  });

  it("rejects an ID with a path", () => {
    assertRule(() => TrustDomain.parse("spiffe://broker.org/webapp"), "missing-trust-domain");
  });

  const invalid: [string, string, SpiffeIdRule][] = [
    ["empty", "", "empty"],
    ["upper case", "Broker.org", "bad-trust-domain-char"],
    ["port", "broker.org:8443", "has-port"],
    ["user info", "me@broker.org", "has-userinfo"],
    ["a slash", "broker.org/webapp", "bad-trust-domain-char"],
    ["percent-encoding", "broker%2eorg", "percent-encoded"],
    ["upper-case scheme", "SPIFFE://broker.org", "wrong-scheme"],
    ["ID with a port", "spiffe://broker.org:1", "has-port"],
  ];
  for (const [what, input, rule] of invalid) {
    it(`rejects ${what} (${rule})`, () => assertRule(() => TrustDomain.parse(input), rule));
  }
});

describe("SpiffeIdError messages", () => {
  // Each message names the input and says, in words, which rule it broke.
  const cases: [(text: string) => unknown, string, string][] = [
    [parseSpiffeId, "", "the ID is empty"],
    [
      parseSpiffeId,
      "SPIFFE://broker.org/webapp",
      "a SPIFFE ID starts with 'spiffe://' (scheme in lower case)",
    ],
    [parseSpiffeId, "spiffe:///webapp", "the trust domain is empty"],
    [
      parseSpiffeId,
      "spiffe://Broker.org/webapp",
      `the trust domain may only hold lower-case letters, digits, '.', '-' and '_', not "B"`,
    ],
    [parseSpiffeId, "spiffe://broker.org:8443/webapp", "a trust domain may not carry a port"],
    [parseSpiffeId, "spiffe://user@broker.org/webapp", "a trust domain may not carry user info"],
    [parseSpiffeId, "spiffe://broker.org/webapp?x=1", "a query ('?') is not allowed"],
    [parseSpiffeId, "spiffe://broker.org?x=1", "a query ('?') is not allowed"],
    [parseSpiffeId, "spiffe://broker.org/webapp#frag", "a fragment ('#') is not allowed"],
    [parseSpiffeId, "spiffe://broker.org#frag", "a fragment ('#') is not allowed"],
    [parseSpiffeId, "spiffe://broker.org/web%20app", "percent-encoding is not allowed"],
    [parseSpiffeId, "spiffe://broker%2eorg/webapp", "percent-encoding is not allowed"],
    [parseSpiffeId, "spiffe://broker.org/a//b", "the path has an empty segment ('//')"],
    [parseSpiffeId, "spiffe://broker.org/a/../webapp", "the path may not hold a '..' segment"],
    [parseSpiffeId, "spiffe://broker.org/./x", "the path may not hold a '.' segment"],
    [parseSpiffeId, "spiffe://broker.org/webapp/", "the path may not end with '/'"],
    [
      parseSpiffeId,
      "spiffe://broker.org/a:b",
      `path segments may only hold letters, digits, '.', '-' and '_', not ":"`,
    ],
    [
      parseWorkloadId,
      "spiffe://broker.org",
      "a workload's SPIFFE ID needs a path, e.g. spiffe://example.org/service",
    ],
    [(text) => TrustDomain.parse(text), "", "the trust domain is empty"],
    [
      (text) => TrustDomain.parse(text),
      "spiffe://broker.org/webapp",
      "expected a trust domain, got a SPIFFE ID with a path",
    ],
  ];
  for (const [parse, input, detail] of cases) {
    it(`${JSON.stringify(input)}: ${detail}`, () => {
      assert.throws(
        () => parse(input),
        (error: unknown) => {
          assert.ok(error instanceof SpiffeIdError);
          assert.equal(error.name, "SpiffeIdError");
          assert.equal(error.input, input);
          assert.equal(error.message, `invalid SPIFFE ID ${JSON.stringify(input)}: ${detail}`);
          return true;
        },
      );
    });
  }
});
