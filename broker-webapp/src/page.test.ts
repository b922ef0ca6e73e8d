import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  CONTENT_SECURITY_POLICY,
  clockTime,
  escapeHtml,
  type PageView,
  RELOAD_SCRIPT,
  renderQuotesPage,
} from "./page.js";
import type { Quote } from "./quote.js";

const TIME = new Date(2026, 0, 2, 3, 4, 5);
const LATER = new Date(2026, 0, 3, 3, 4, 5);

function quote(symbol: string, overrides: Partial<Quote> = {}): Quote {
  return {
    Symbol: symbol,
    Price: 12.345,
    Open: 10,
    Low: 9.999,
    High: 13,
    Close: 11.5,
    Time: TIME,
    ...overrides,
  };
}

function view(overrides: Partial<PageView> = {}): PageView {
  return {
    status: { kind: "ok" },
    quotes: [quote("AAAA")],
    lastUpdated: TIME,
    identity: {
      spiffeId: "spiffe://broker.org/webapp",
      svidExpiresAt: new Date(2026, 0, 2, 4, 0, 0),
      verifiedPeer: "spiffe://stocksmarket.org/quotes-service",
      trustDomains: ["broker.org", "stocksmarket.org"],
      quotesUrl: "https://stock-quotes-service:8090/quotes",
      expectedPeer: "spiffe://stocksmarket.org/quotes-service",
    },
    trust: {
      bundles: [
        {
          trustDomain: "broker.org",
          authorities: [{ fingerprint: "11:11:11:11:11:11:11:11", notAfter: LATER }],
          changedAt: TIME,
        },
        {
          trustDomain: "stocksmarket.org",
          authorities: [
            { fingerprint: "AA:AA:AA:AA:AA:AA:AA:AA", notAfter: LATER },
            { fingerprint: "BB:BB:BB:BB:BB:BB:BB:BB", notAfter: LATER },
          ],
          changedAt: new Date(2026, 0, 2, 3, 30, 0),
        },
      ],
      quotesIssuer: {
        trustDomain: "stocksmarket.org",
        authority: { fingerprint: "BB:BB:BB:BB:BB:BB:BB:BB", notAfter: LATER },
      },
    },
    ...overrides,
  };
}

/** The cells of each body row, tags stripped. */
function rows(html: string): string[][] {
  const body = html.split("<tbody>")[1]?.split("</tbody>")[0] ?? "";
  return [...body.matchAll(/<tr>(.*?)<\/tr>/g)].map((row) =>
    [...(row[1] ?? "").matchAll(/<td>(.*?)<\/td>/g)].map((cell) => cell[1] ?? ""),
  );
}

describe("renderQuotesPage", () => {
  it("renders the original's table: header, 2-decimal prices, time, caption", () => {
    const html = renderQuotesPage(view());
    assert.match(
      html,
      /<tr><th>Symbol<\/th><th>Price<\/th><th>Open<\/th><th>Low<\/th><th>High<\/th><th>Close<\/th><th>Time<\/th><\/tr>/,
    );
    assert.deepEqual(rows(html), [
      ["AAAA", "12.35", "10.00", "10.00", "13.00", "11.50", "03:04:05"],
    ]);
    assert.match(html, /<caption>Last Updated: 03:04:05<\/caption>/);
    assert.doesNotMatch(html, /Quotes service unavailable/);
  });

  it("shows - in every value column of a quote that never changed", () => {
    const html = renderQuotesPage(view({ quotes: [quote("BBBB", { Time: null })] }));
    assert.deepEqual(rows(html), [["BBBB", "-", "-", "-", "-", "-", "-"]]);
  });

  it("reloads after one second with a script the CSP allows by hash, and nothing else", () => {
    const html = renderQuotesPage(view());
    assert.ok(html.includes(`<script>${RELOAD_SCRIPT}</script>`));
    assert.equal(html.match(/<script/g)?.length, 1);
    assert.match(RELOAD_SCRIPT, /location\.reload\(\)/);
    assert.match(RELOAD_SCRIPT, /1000/);
    const hash = createHash("sha256").update(RELOAD_SCRIPT).digest("base64");
    assert.ok(CONTENT_SECURITY_POLICY.includes(`script-src 'sha256-${hash}'`));
    assert.ok(CONTENT_SECURITY_POLICY.includes("default-src 'none'"));
  });

  it("puts the error line above the table and keeps the last quotes", () => {
    const html = renderQuotesPage(
      view({ status: { kind: "unavailable", reason: "connection refused by x:8090" } }),
    );
    const error = html.indexOf("Quotes service unavailable");
    assert.ok(error > 0 && error < html.indexOf("<table>"));
    assert.ok(html.includes("connection refused by x:8090"));
    assert.equal(rows(html).length, 1);
  });

  it("says in plain words why it waits for an SVID and which step fixes it", () => {
    const html = renderQuotesPage(
      view({
        status: {
          kind: "waiting-for-svid",
          reason: "There is no SPIRE Agent socket at /tmp/<agent>.sock: the agent is not running.",
          fix: "Start the agents: run ./1-start-spire-agents.sh.",
        },
        quotes: [],
        lastUpdated: undefined,
        identity: { ...view().identity, spiffeId: undefined, svidExpiresAt: undefined },
      }),
    );
    assert.match(html, /Waiting for an X\.509 SVID/);
    assert.ok(html.includes("no SPIRE Agent socket at /tmp/&lt;agent&gt;.sock"), "reason, escaped");
    assert.ok(
      html.includes('<strong class="fix">Start the agents: run ./1-start-spire-agents.sh.'),
    );
    assert.match(html, /the service log has the agent's full answer/);
    assert.match(html, /Last Updated: never/);
    assert.ok(html.includes(RELOAD_SCRIPT), "still reloads while waiting");
  });

  it("leaves the fix out when waiting is enough", () => {
    const html = renderQuotesPage(
      view({ status: { kind: "waiting-for-svid", reason: "No answer yet.", fix: undefined } }),
    );
    assert.ok(html.includes("No answer yet."));
    assert.ok(!html.includes('class="fix"'));
  });

  it("shows the identity panel: own ID, expiry, verified peer, trust domains", () => {
    const html = renderQuotesPage(view());
    const panel = html.slice(html.indexOf('<section class="identity">'));
    assert.ok(panel.indexOf("</table>") === -1, "the panel is under the table");
    assert.ok(panel.includes("spiffe://broker.org/webapp"));
    assert.ok(panel.includes("2026-01-02 04:00:00"));
    assert.ok(panel.includes("spiffe://stocksmarket.org/quotes-service"));
    assert.ok(panel.includes("broker.org, stocksmarket.org"));
  });

  it("shows the trust panel beside the identity panel: authorities, change time, issuer", () => {
    const html = renderQuotesPage(view());
    const panels = html.slice(html.indexOf('<div class="panels">'));
    assert.ok(
      panels.indexOf('<section class="identity">') < panels.indexOf('<section class="trust">'),
    );
    const trust = panels.slice(panels.indexOf('<section class="trust">'));
    assert.match(trust, /<dt>broker\.org<\/dt><dd>changed 2026-01-02 03:04:05; 1 authority/);
    assert.match(
      trust,
      /<dt>stocksmarket\.org<\/dt><dd>changed 2026-01-02 03:30:00; 2 authorities/,
    );
    assert.ok(trust.includes("<li>AA:AA:AA:AA:AA:AA:AA:AA (until 2026-01-03 03:04:05)</li>"));
    assert.ok(
      trust.includes(
        `<li class="issuer">BB:BB:BB:BB:BB:BB:BB:BB (until 2026-01-03 03:04:05): issued the quotes service's certificate</li>`,
      ),
    );
    assert.match(
      trust,
      /issued by<\/dt><dd>stocksmarket\.org authority BB:BB:BB:BB:BB:BB:BB:BB \(until/,
    );
  });

  it("says when there are no bundles, no connection, or an issuer outside the bundle", () => {
    const empty = renderQuotesPage(view({ trust: { bundles: [], quotesIssuer: undefined } }));
    assert.match(empty, /<dt>Bundles<\/dt><dd>none yet<\/dd>/);
    assert.match(empty, /\(no connection verified yet\)/);
    const unknown = renderQuotesPage(
      view({
        trust: {
          ...view().trust,
          quotesIssuer: { trustDomain: "stocksmarket.org", authority: undefined },
        },
      }),
    );
    assert.match(unknown, /no authority of the stocksmarket\.org bundle held when it was verified/);
    assert.doesNotMatch(unknown, /class="issuer"/);
  });

  it("renders nothing from upstream or the agent as markup", () => {
    const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`;
    const html = renderQuotesPage(
      view({
        status: { kind: "unavailable", reason: evil },
        quotes: [quote(evil), quote(`"'&`, { Time: null })],
        identity: { ...view().identity, verifiedPeer: evil, trustDomains: [evil] },
        trust: {
          bundles: [
            {
              trustDomain: evil,
              authorities: [{ fingerprint: evil, notAfter: LATER }],
              changedAt: TIME,
            },
          ],
          quotesIssuer: { trustDomain: evil, authority: { fingerprint: evil, notAfter: LATER } },
        },
      }),
    );
    assert.equal(html.match(/<script/g)?.length, 1, "only the page's own script");
    assert.doesNotMatch(html, /<img/);
    assert.ok(html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert.ok(html.includes("<td>&quot;&#39;&amp;</td>"));
  });
});

describe("escapeHtml and clockTime", () => {
  it("escapes the five characters that matter", () => {
    assert.equal(
      escapeHtml(`<a href="x" title='y'>&</a>`),
      "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
  });
  it("formats HH:MM:SS with leading zeros", () => {
    assert.equal(clockTime(new Date(2026, 0, 1, 1, 2, 3)), "01:02:03");
  });
});
