import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parseSpiffeId, type SpiffeId, TrustDomain } from "../spiffeid/spiffeid.js";
import {
  AuthorizationError,
  type Authorizer,
  authorizeAny,
  authorizeID,
  authorizeMemberOf,
  authorizeOneOf,
} from "./authorize.js";

// Parsed in a hook rather than at load, so that a broken parser fails tests here
// instead of crashing the file.
let webapp: SpiffeId;
let admin: SpiffeId;
let quotes: SpiffeId;
let quotesElsewhere: SpiffeId;
before(() => {
  webapp = parseSpiffeId("spiffe://broker.org/webapp");
  admin = parseSpiffeId("spiffe://broker.org/admin");
  quotes = parseSpiffeId("spiffe://stocksmarket.org/quotes-service");
  quotesElsewhere = parseSpiffeId("spiffe://broker.org/quotes-service");
});

/** These authorizers decide by ID alone; the verified path is not theirs to read. */
const NO_CHAIN = [] as const;

function assertRefused(authorizer: Authorizer, peer: SpiffeId, message: string): void {
  assert.throws(
    () => authorizer(peer, NO_CHAIN),
    (error: unknown) => {
      assert.ok(error instanceof AuthorizationError, `expected AuthorizationError, got ${error}`);
      assert.equal(error.code, "unauthorized");
      assert.equal(error.name, "AuthorizationError");
      assert.equal(error.peerId, peer);
      assert.equal(error.message, message);
      return true;
    },
  );
}

describe("authorizers", () => {
  it("authorizeAny accepts every peer", () => {
    for (const peer of [webapp, admin, quotes])
      assert.equal(authorizeAny()(peer, NO_CHAIN), undefined);
  });

  it("authorizeID accepts exactly that ID (compared by value)", () => {
    const authorizer = authorizeID(webapp);
    authorizer(parseSpiffeId("spiffe://broker.org/webapp"), NO_CHAIN);
    assertRefused(
      authorizer,
      admin,
      "peer spiffe://broker.org/admin is not the expected spiffe://broker.org/webapp",
    );
    // Same path, other trust domain.
    assertRefused(
      authorizeID(quotes),
      quotesElsewhere,
      "peer spiffe://broker.org/quotes-service is not the expected spiffe://stocksmarket.org/quotes-service",
    );
  });

  it("authorizeOneOf accepts any of its IDs and refuses the rest, naming them", () => {
    const authorizer = authorizeOneOf(webapp, quotes);
    authorizer(parseSpiffeId("spiffe://broker.org/webapp"), NO_CHAIN);
    authorizer(parseSpiffeId("spiffe://stocksmarket.org/quotes-service"), NO_CHAIN);
    assertRefused(
      authorizer,
      admin,
      "peer spiffe://broker.org/admin is not one of spiffe://broker.org/webapp, spiffe://stocksmarket.org/quotes-service",
    );
    assertRefused(
      authorizer,
      quotesElsewhere,
      "peer spiffe://broker.org/quotes-service is not one of spiffe://broker.org/webapp, spiffe://stocksmarket.org/quotes-service",
    );
  });

  it("authorizeOneOf with no IDs refuses everyone", () => {
    assertRefused(authorizeOneOf(), webapp, "peer spiffe://broker.org/webapp is not one of ");
  });

  it("authorizeMemberOf accepts any ID of that trust domain, and only those", () => {
    const authorizer = authorizeMemberOf(TrustDomain.parse("broker.org"));
    authorizer(webapp, NO_CHAIN);
    authorizer(admin, NO_CHAIN);
    authorizer(parseSpiffeId("spiffe://broker.org"), NO_CHAIN);
    assertRefused(
      authorizer,
      quotes,
      "peer spiffe://stocksmarket.org/quotes-service is not a member of trust domain broker.org",
    );
    // A trust domain whose name merely starts with broker.org is another trust domain.
    assertRefused(
      authorizer,
      parseSpiffeId("spiffe://broker.org.evil/webapp"),
      "peer spiffe://broker.org.evil/webapp is not a member of trust domain broker.org",
    );
  });
});
