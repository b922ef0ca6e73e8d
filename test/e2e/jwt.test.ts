// The JWT road end to end, in local mode, against real SPIRE: the quotes service serves TLS
// with its X.509-SVID and takes a JWT-SVID bearer token from the webapp, validated against
// broker.org's JWT bundle that reached it through federation. Bad tokens are refused with
// 401, and broker.org's JWT authority is rotated while the page is loaded every 200 ms.
//
// Needs root and the SPIRE binaries, as federation.test.ts; it never skips.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { hmacToken, TestJwtKey, unsignedToken } from "spiffe-node/testing";
import { Agent, request } from "undici";
import {
  agentSocket,
  DATA,
  isAlive,
  ROOT,
  recordedPids,
  run,
  runScript,
  waitForPricedPage,
} from "./demo.js";
import { PageLoader } from "./page-loader.js";

const QUOTES_ID = "spiffe://stocksmarket.org/quotes-service";
const WEBAPP_ID = "spiffe://broker.org/webapp";
const QUOTES_URL = "https://127.0.0.1:8090/quotes";
const SPIRE_BIN = join(ROOT, ".spire", "bin");
const JWT = ["--auth", "jwt"];

const loader = new PageLoader();
// Only what the quotes service answers a token matters here, not who it is.
const insecure = new Agent({ connect: { rejectUnauthorized: false } });

/** `spire-agent api fetch jwt` as a workload's unix user: its token for `audience`. */
async function realToken(trustDomain: string, audience: string): Promise<string> {
  const user = trustDomain === "broker.org" ? "webapp" : "quotes-service";
  const result = await run("setpriv", [
    `--reuid=${user}`,
    `--regid=${user}`,
    "--init-groups",
    join(SPIRE_BIN, "spire-agent"),
    "api",
    "fetch",
    "jwt",
    "-audience",
    audience,
    "-socketPath",
    await agentSocket(trustDomain),
  ]);
  const token = /^token\([^)]*\):\s*\n\s*(\S+)/m.exec(result.stdout)?.[1];
  assert.ok(token, `no token from spire-agent api fetch jwt:\n${result.stdout}${result.stderr}`);
  return token;
}

async function askQuotes(token: string | undefined): Promise<{ status: number; code?: string }> {
  const response = await request(QUOTES_URL, {
    dispatcher: insecure,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  const text = await response.body.text();
  const body = response.statusCode === 200 ? {} : (JSON.parse(text) as { code?: string });
  return { status: response.statusCode, ...(body.code === undefined ? {} : { code: body.code }) };
}

interface WebappTrust {
  jwt?: {
    bundles: { trustDomain: string; keyIds: string[] }[];
    signedBy?: { trustDomain: string; keyId?: string };
  };
}

async function webappTrust(): Promise<WebappTrust> {
  const response = await fetch("http://127.0.0.1:8080/healthz");
  return ((await response.json()) as { trust: WebappTrust }).trust;
}

function decodeKid(token: string): string | undefined {
  const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString());
  return (header as { kid?: string }).kid;
}

describe("the JWT road against real SPIRE (local mode)", { timeout: 1_200_000 }, () => {
  before(async () => {
    const problems: string[] = [];
    if (process.getuid?.() !== 0)
      problems.push("run the tests as root (the services run as their users)");
    for (const bin of ["spire-server", "spire-agent"]) {
      if (!existsSync(join(SPIRE_BIN, bin))) problems.push(`${bin} is missing from .spire/bin`);
    }
    const running = [...recordedPids()].filter(([, pid]) => isAlive(pid));
    if (running.length > 0)
      problems.push("a local demo is running: stop it with npm run stop first");
    if (problems.length > 0)
      throw new Error(`cannot run the JWT end-to-end test:\n - ${problems.join("\n - ")}`);
    await runScript("build.sh");
  });

  after(async () => {
    await loader.stop();
    await insecure.close();
    await run(join(ROOT, "scripts/stop.sh"), ["--mode", "local"], { timeoutMs: 120_000 });
  });

  it("runs the tutorial's steps with --auth jwt; the page shows quotes", {
    timeout: 600_000,
  }, async () => {
    await runScript("scripts/start-servers.sh", 240_000, "local", JWT);
    await runScript("1-start-spire-agents.sh", 240_000, "local", JWT);
    await runScript("2-bootstrap-federation.sh", 240_000, "local", JWT);
    await runScript("3-create-registration-entries.sh", 240_000, "local", JWT);
    await runScript("scripts/start-services.sh", 240_000, "local", JWT);
    const page = await waitForPricedPage(60_000);
    assert.ok(page, "the page shows quotes on the JWT road");
    assert.match(page.html, /JWT authorities \(key IDs\)/);
    assert.match(
      page.html,
      /signed the webapp&#39;s current JWT-SVID|signed the webapp's current JWT-SVID/,
    );
    const log = readFileSync(join(DATA, "logs", "stock-quotes-service.log"), "utf8");
    assert.match(log, /TLS with our X\.509-SVID; clients send a JWT-SVID/);
  });

  it("the trust panel shows each trust domain's JWT authorities and the key that signed the token", async () => {
    const trust = await webappTrust();
    const domains = trust.jwt?.bundles.map((bundle) => bundle.trustDomain);
    assert.deepEqual(domains, ["broker.org", "stocksmarket.org"]);
    const signer = trust.jwt?.signedBy;
    assert.equal(signer?.trustDomain, "broker.org");
    const brokerKeys = trust.jwt?.bundles.find((b) => b.trustDomain === "broker.org")?.keyIds ?? [];
    assert.ok(
      signer?.keyId !== undefined && brokerKeys.includes(signer.keyId),
      "the signer is a broker.org key",
    );
  });

  it("refuses bad tokens with 401 and logs why; a real webapp token gets quotes", {
    timeout: 120_000,
  }, async () => {
    const good = await realToken("broker.org", QUOTES_ID);
    assert.equal((await askQuotes(good)).status, 200, "positive control: the webapp's own token");
    const kid = decodeKid(good);
    const claims = JSON.parse(
      Buffer.from(good.split(".")[1] ?? "", "base64url").toString(),
    ) as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const forger = TestJwtKey.generate("ES256", kid);
    const cases: [string, string | undefined, number, string][] = [
      ["missing", undefined, 401, "missing-token"],
      ["malformed", "not-a-jwt", 401, "malformed"],
      ["alg none", unsignedToken(claims, kid), 401, "unsupported-algorithm"],
      ["HMAC", hmacToken(claims, "secret", "HS256", kid), 401, "unsupported-algorithm"],
      ["forged with the real kid", forger.sign(claims), 401, "bad-signature"],
      [
        "expired (forged, with a key broker.org does not have)",
        TestJwtKey.generate().sign({ ...claims, iat: now - 600, exp: now - 300 }),
        401,
        "unknown-key",
      ],
      [
        "wrong audience",
        await realToken("broker.org", "spiffe://stocksmarket.org/other"),
        401,
        "audience-mismatch",
      ],
      [
        "wrong trust domain",
        forger.sign({ ...claims, sub: "spiffe://evil.org/webapp" }),
        401,
        "no-bundle",
      ],
      [
        "another workload's valid token",
        await realToken("stocksmarket.org", QUOTES_ID),
        403,
        "unauthorized",
      ],
    ];
    for (const [what, token, status, code] of cases) {
      assert.deepEqual(await askQuotes(token), { status, code }, what);
    }
    const log = readFileSync(join(DATA, "logs", "stock-quotes-service.log"), "utf8");
    for (const code of [
      "missing-token",
      "malformed",
      "unsupported-algorithm",
      "bad-signature",
      "audience-mismatch",
      "no-bundle",
    ]) {
      assert.ok(log.includes(`"code":"${code}"`), `the quotes service logged ${code}`);
    }
    assert.ok(
      [...recordedPids()]
        .filter(([name]) => name === "stock-quotes-service" || name === "broker-webapp")
        .every(([, pid]) => isAlive(pid)),
      "nothing crashed",
    );
    assert.ok(WEBAPP_ID);
  });

  it("rotates broker.org's JWT authority while the page loads every 200 ms, none failing", {
    timeout: 600_000,
  }, async () => {
    const before = (await webappTrust()).jwt?.signedBy?.keyId;
    const started = Date.now();
    loader.start();
    const rotation = await runScript("4-rotate-ca.sh", 540_000, "local", [
      ...JWT,
      "broker.org",
      "--what",
      "jwt",
    ]);
    // A few more loads after the revocation reached the quotes service.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await loader.stop();
    const loads = loader.between(started);
    const counts = PageLoader.count(loads);
    console.log(
      `JWT authority rotation (${rotation.seconds.toFixed(0)} s): ${PageLoader.describe(loads)}`,
    );
    assert.ok(counts.total > 50, `enough loads: ${PageLoader.describe(loads)}`);
    assert.equal(counts.ok, counts.total, PageLoader.describe(loads));
    const newKid = /rotated: it signs with key (\S+)/.exec(rotation.stdout)?.[1];
    assert.ok(newKid, rotation.stdout);
    assert.notEqual(newKid, before);
    const trust = await webappTrust();
    assert.equal(trust.jwt?.signedBy?.keyId, newKid, "the webapp's token is signed by the new key");
    const brokerKeys = trust.jwt?.bundles.find((b) => b.trustDomain === "broker.org")?.keyIds ?? [];
    assert.ok(
      before === undefined || !brokerKeys.includes(before),
      "the old key is gone from the bundle",
    );
  });
});
