import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { JwtBundle, JwtBundleSet, parseWorkloadId, TrustDomain } from "spiffe-node";
import { hmacToken, TestJwtKey, unsignedToken } from "spiffe-node/testing";
import { createQuotesApp } from "./app.js";
import { requireJwtSvid } from "./jwt-auth.js";
import { QuoteBook } from "./quotes.js";

const AUDIENCE = "spiffe://stocksmarket.org/quotes-service";
const WEBAPP = "spiffe://broker.org/webapp";
const brokerKey = TestJwtKey.generate("ES256");
const bundles = new JwtBundleSet([
  new JwtBundle(TrustDomain.parse("broker.org"), [brokerKey.authority()]),
]);
const lines: string[] = [];
const log = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });

let server: Server;
let base: string;
before(async () => {
  const app = createQuotesApp({
    book: new QuoteBook(),
    log,
    health: () => ({
      hasSvid: true,
      spiffeId: AUDIENCE,
      svidExpiresAt: null,
      refusedSvidUpdates: { count: 0, last: null },
    }),
    authenticate: requireJwtSvid({
      bundles,
      audience: () => AUDIENCE,
      authorizedId: parseWorkloadId(WEBAPP),
      log,
    }),
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function quotesWith(authorization?: string): Promise<{ status: number; code?: string }> {
  const response = await fetch(`${base}/quotes`, {
    headers: authorization === undefined ? {} : { authorization },
  });
  const body = (await response.json()) as { code?: string };
  return { status: response.status, ...(body.code === undefined ? {} : { code: body.code }) };
}

describe("requireJwtSvid", () => {
  it("gives quotes to the webapp's valid token (positive control)", async () => {
    assert.deepEqual(await quotesWith(`Bearer ${brokerKey.issue(WEBAPP, AUDIENCE)}`), {
      status: 200,
    });
  });

  it("refuses bad tokens with 401 and the reason in the log", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: WEBAPP, aud: [AUDIENCE], exp: now + 300 };
    const cases: [string, string | undefined, string][] = [
      ["missing", undefined, "missing-token"],
      ["not bearer", `Basic ${Buffer.from("a:b").toString("base64")}`, "missing-token"],
      ["malformed", "Bearer x.y", "malformed"],
      ["expired", `Bearer ${brokerKey.sign({ ...claims, exp: now - 300 })}`, "expired"],
      [
        "wrong audience",
        `Bearer ${brokerKey.issue(WEBAPP, "spiffe://x.org/y")}`,
        "audience-mismatch",
      ],
      [
        "wrong trust domain",
        `Bearer ${brokerKey.issue("spiffe://evil.org/webapp", AUDIENCE)}`,
        "no-bundle",
      ],
      ["alg none", `Bearer ${unsignedToken(claims, brokerKey.keyId)}`, "unsupported-algorithm"],
      [
        "HMAC",
        `Bearer ${hmacToken(claims, "k", "HS256", brokerKey.keyId)}`,
        "unsupported-algorithm",
      ],
    ];
    for (const [what, header, code] of cases) {
      assert.deepEqual(await quotesWith(header), { status: 401, code }, what);
      assert.match(lines.at(-1) ?? "", new RegExp(`"code":"${code}"`), `${what} is logged`);
    }
  });

  it("answers 403 to a valid token of another workload", async () => {
    const other = brokerKey.issue("spiffe://broker.org/someone-else", AUDIENCE);
    assert.deepEqual(await quotesWith(`Bearer ${other}`), { status: 403, code: "unauthorized" });
  });
});
