import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { status } from "@grpc/grpc-js";
import type { JwtBundleSet } from "../bundle/jwtbundle.js";
import { parseAndValidateJwtSvid } from "../jwtsvid/svid.js";
import { FakeWorkloadApi } from "../testing/fake-workload-api.js";
import { jwksOf, TestJwtKey } from "../testing/jwt.js";
import { EXAMPLE, FAST_BACKOFF, OTHER, sleep, waitUntil } from "../testing/support/workloadapi.js";
import { WorkloadApiClient } from "./client.js";
import { JwtSource, JwtSourceError } from "./jwtsource.js";

const ID = "spiffe://example.org/workload";
const AUD = "spiffe://other.org/api";
const exampleKey = TestJwtKey.generate("ES256", "example-1");
const otherKey = TestJwtKey.generate("RS256", "other-1");

let fake: FakeWorkloadApi;
const closers: { close(): void }[] = [];

function source(options: ConstructorParameters<typeof JwtSource>[0] = {}): JwtSource {
  const created = new JwtSource({ address: fake.address, backoff: FAST_BACKOFF, ...options });
  closers.push(created);
  return created;
}

function client(): WorkloadApiClient {
  const created = new WorkloadApiClient({ address: fake.address, backoff: FAST_BACKOFF });
  closers.push(created);
  return created;
}

before(async () => {
  fake = await FakeWorkloadApi.start();
});
after(() => fake.stop());
afterEach(() => {
  for (const closer of closers.splice(0)) closer.close();
  fake.failWith(undefined);
});

function fetches(): number {
  return fake.calls.filter((call) => call.method === "FetchJWTSVID").length;
}

describe("WorkloadApiClient, JWT calls", () => {
  test("FetchJWTSVID sends the audiences, the SPIFFE ID and the security header", async () => {
    fake.setJwtSvids(({ audience }) => [
      { spiffeId: ID, token: exampleKey.issue(ID, audience), hint: "h" },
    ]);
    const before = fake.calls.length;
    const svids = await client().fetchJwtSvids({ audience: [AUD, "second"], spiffeId: ID });
    assert.equal(svids.length, 1);
    assert.equal(svids[0]?.id.toString(), ID);
    assert.equal(svids[0]?.hint, "h");
    const call = fake.calls[before];
    assert.equal(call?.method, "FetchJWTSVID");
    assert.deepEqual(call?.request?.audience, [AUD, "second"]);
    assert.equal(call?.request?.spiffe_id, ID);
    assert.deepEqual(call?.metadata.get("workload.spiffe.io"), ["true"]);
  });

  test("FetchJWTSVID: PERMISSION_DENIED rejects; tokens that are not JWT-SVIDs are dropped", async () => {
    fake.setJwtSvids([]);
    await assert.rejects(client().fetchJwtSvids({ audience: AUD }), { code: "PERMISSION_DENIED" });
    fake.setJwtSvids([
      { spiffeId: ID, token: "not.a.token" },
      { spiffeId: "spiffe://example.org/someone-else", token: exampleKey.issue(ID, AUD) },
      { spiffeId: ID, token: exampleKey.issue(ID, "wrong audience") },
    ]);
    await assert.rejects(client().fetchJwtSvids({ audience: AUD }), { code: "no-svids" });
    await assert.rejects(client().fetchJwtSvids({ audience: [] }), { code: "invalid-audience" });
  });

  test("ValidateJWTSVID returns the ID and the claims, or the agent's refusal", async () => {
    fake.setJwtValidator(({ token, audience }) =>
      token === "good"
        ? { spiffeId: ID, claims: { aud: [audience], exp: 5, nested: { a: [true, null] } } }
        : { error: "bad token" },
    );
    const validated = await client().validateJwtSvid("good", AUD);
    assert.equal(validated.id.toString(), ID);
    assert.deepEqual(validated.claims, { aud: [AUD], exp: 5, nested: { a: [true, null] } });
    await assert.rejects(client().validateJwtSvid("bad", AUD), { code: "INVALID_ARGUMENT" });
  });

  test("fetchJwtBundles parses every trust domain", async () => {
    fake.setJwtBundles({
      [EXAMPLE.idString()]: jwksOf([exampleKey]),
      [OTHER.idString()]: jwksOf([otherKey]),
      bad: "{}",
    });
    const set = await client().fetchJwtBundles();
    assert.deepEqual(set.getJwtBundleForTrustDomain(OTHER)?.keyIds(), ["other-1"]);
    assert.equal(set.size, 2);
  });
});

describe("JwtSource", () => {
  test("streams bundles, federated included, and validates against them", async () => {
    fake.setJwtBundles({
      [EXAMPLE.idString()]: jwksOf([exampleKey]),
      [OTHER.idString()]: jwksOf([otherKey]),
    });
    const jwt = source();
    await jwt.ready({ timeoutMs: 2000 });
    const sub = "spiffe://other.org/webapp";
    const svid = await parseAndValidateJwtSvid(otherKey.issue(sub, AUD), jwt, AUD);
    assert.equal(svid.id.toString(), sub);

    const changes: JwtBundleSet[] = [];
    jwt.on("bundlesChanged", (bundles) => changes.push(bundles));
    const added = TestJwtKey.generate();
    fake.setJwtBundles({ [EXAMPLE.idString()]: jwksOf([exampleKey, added]) });
    await waitUntil("the new bundles", () => changes.length === 1);
    assert.equal(jwt.getJwtBundleForTrustDomain(OTHER), undefined);
    await assert.rejects(parseAndValidateJwtSvid(otherKey.issue(sub, AUD), jwt, AUD), {
      code: "no-bundle",
    });
    await parseAndValidateJwtSvid(added.issue(ID, AUD), jwt, AUD);
  });

  test("withdraws the bundles on a confirmed PERMISSION_DENIED", async () => {
    fake.setJwtBundles({ [EXAMPLE.idString()]: jwksOf([exampleKey]) });
    const jwt = source({ permissionDeniedGraceMs: 100 });
    await jwt.ready({ timeoutMs: 2000 });
    fake.failWith(status.PERMISSION_DENIED);
    await waitUntil("bundles withdrawn", () => jwt.getJwtBundles().size === 0, 3000);
  });

  test("ready() times out saying what the agent answered; fails on INVALID_ARGUMENT", async () => {
    fake.failWith(status.PERMISSION_DENIED);
    await assert.rejects(source().ready({ timeoutMs: 100 }), (error: unknown) => {
      assert.ok(error instanceof JwtSourceError);
      assert.equal(error.code, "timeout");
      assert.match(error.message, /PERMISSION_DENIED/);
      return true;
    });
    fake.failWith(status.INVALID_ARGUMENT);
    await assert.rejects(source().ready(), { code: "failed" });
  });

  test("caches a token per audience and refreshes it halfway through its life", async () => {
    let issued = 0;
    fake.setJwtSvids(({ audience }) => {
      issued += 1;
      return [{ spiffeId: ID, token: exampleKey.issue(ID, audience, 2, { n: issued }) }];
    });
    const jwt = source();
    let refreshes = 0;
    jwt.on("svidFetched", (_svid, audience) => {
      if (audience[0] === AUD) refreshes += 1;
    });
    const start = fetches();
    const first = await jwt.fetchJwtSvid({ audience: AUD });
    const again = await Promise.all([1, 2, 3].map(() => jwt.fetchJwtSvid({ audience: AUD })));
    assert.ok(
      again.every((svid) => svid === first),
      "served from the cache",
    );
    assert.equal(fetches() - start, 1);
    await jwt.fetchJwtSvid({ audience: "another" });
    assert.equal(fetches() - start, 2, "one token per audience");
    // A 2 s token: refreshed in the background within about 1 s.
    await waitUntil("the refresh", () => refreshes === 2, 3000);
    const calls = fetches();
    const refreshed = await jwt.fetchJwtSvid({ audience: AUD });
    assert.notEqual(refreshed.token, first.token);
    assert.equal(fetches(), calls, "no fetch of its own");
  });

  test("retries a refused fetch until the agent answers, then stops at fetchTimeoutMs", async () => {
    fake.setJwtSvids(({ audience }) => [{ spiffeId: ID, token: exampleKey.issue(ID, audience) }]);
    fake.failNext(2, status.PERMISSION_DENIED);
    const svid = await source().fetchJwtSvid({ audience: AUD });
    assert.equal(svid.id.toString(), ID);
    fake.setJwtSvids([]);
    await assert.rejects(source({ fetchTimeoutMs: 150 }).fetchJwtSvid({ audience: "x" }), {
      code: "timeout",
    });
  });

  test("drops a cached token when a refresh is refused", async () => {
    fake.setJwtSvids(({ audience }) => [
      { spiffeId: ID, token: exampleKey.issue(ID, audience, 2) },
    ]);
    const jwt = source({ fetchTimeoutMs: 100 });
    await jwt.fetchJwtSvid({ audience: AUD });
    fake.setJwtSvids([]);
    await sleep(1300);
    await assert.rejects(jwt.fetchJwtSvid({ audience: AUD }), JwtSourceError);
  });

  test("drops a cached token whose key left its bundle (a revoked authority) and fetches anew", async () => {
    const oldKey = TestJwtKey.generate("ES256", "old");
    const newKey = TestJwtKey.generate("ES256", "new");
    let signer = oldKey;
    fake.setJwtSvids(({ audience }) => [{ spiffeId: ID, token: signer.issue(ID, audience, 600) }]);
    fake.setJwtBundles({ [EXAMPLE.idString()]: jwksOf([oldKey, newKey]) });
    const jwt = source();
    await jwt.ready({ timeoutMs: 2000 });
    assert.equal((await jwt.fetchJwtSvid({ audience: AUD })).keyId, "old");
    signer = newKey;
    fake.setJwtBundles({ [EXAMPLE.idString()]: jwksOf([newKey]) });
    await waitUntil(
      "a token signed by the new key",
      () => fetches() > 0 && jwt.getJwtBundles().getJwtBundleForTrustDomain(EXAMPLE)?.size === 1,
    );
    assert.equal((await jwt.fetchJwtSvid({ audience: AUD })).keyId, "new");
  });

  test("refetchJwtSvid replaces the cached token with a fresh one, once for calls made together", async () => {
    let issued = 0;
    fake.setJwtSvids(({ audience }) => {
      issued += 1;
      return [{ spiffeId: ID, token: exampleKey.issue(ID, audience, 600, { n: issued }) }];
    });
    const jwt = source();
    const cached = await jwt.fetchJwtSvid({ audience: AUD });
    const start = fetches();
    const [a, b] = await Promise.all([
      jwt.refetchJwtSvid({ audience: AUD }),
      jwt.refetchJwtSvid({ audience: AUD }),
    ]);
    assert.equal(fetches() - start, 1);
    assert.equal(a, b);
    assert.notEqual(a.token, cached.token);
    assert.equal(await jwt.fetchJwtSvid({ audience: AUD }), a, "the fresh one is cached");
  });

  test("close() rejects what waits and refuses new calls", async () => {
    fake.failWith(status.UNAVAILABLE);
    const jwt = source();
    const waiting = jwt.ready();
    jwt.close();
    await assert.rejects(waiting, { code: "closed" });
    await assert.rejects(jwt.fetchJwtSvid({ audience: AUD }), { code: "closed" });
  });
});
